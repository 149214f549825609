"""Moving paid orders to the customer: each step one conditional transaction with its
stock movement, its history and its follow-up work."""
from __future__ import annotations

import secrets

from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.orders import OrderChanged, _failed_condition, event_id, to_order

FULFILLING_SHARDS = 10


class FulfilmentRepository:
    def __init__(self) -> None:
        bind_records()

    def start(self, order, shipping: dict, now: float, auto_complete: bool, follow_up: list[tuple[str, dict]],
              units: list[tuple[str, str, int]]):
        """PAID -> FULFILLING; the ``units`` (location, sku, quantity) still reserved leave
        the shelf (on_hand and reserved both go down). Raises OrderChanged if the order is
        not PAID any more."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.outbox import new_outbox_item
        from chalicelib.db.records import OrderEventRecord, OrderRecord, StockRecord

        actions = [OrderRecord.status.set("FULFILLING"), OrderRecord.shipped_at.set(now),
                   OrderRecord.shipping.set(shipping), OrderRecord.version.add(1)]
        if auto_complete:
            actions.append(OrderRecord.fulfilling_shard.set(f"F{secrets.randbelow(FULFILLING_SHARDS)}"))
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(OrderEventRecord(order.order_id, event_id(now), kind="FULFILLING", detail=shipping, at=now))
                for kind, payload in follow_up:
                    tx.save(new_outbox_item(kind, payload, now))
                tx.update(OrderRecord(order.order_id), actions=actions, condition=OrderRecord.status == "PAID")
                for location, sku, quantity in units:
                    tx.update(StockRecord(location, sku),
                              actions=[StockRecord.on_hand.add(-quantity),
                                       StockRecord.reserved.add(-quantity), StockRecord.updated_at.set(now)],
                              condition=StockRecord.reserved >= quantity)
        except TransactWriteError as exc:
            # puts before updates: [event, follow-up..., order, lines...]
            if _failed_condition(list(exc.cancellation_reasons or []), 1 + len(follow_up)):
                raise OrderChanged(order.order_id) from exc
            raise

    def complete(self, order_id: str, cause: str, now: float, follow_up: list[tuple[str, dict]]):
        """FULFILLING -> COMPLETED (received, picked up, or confirmed automatically)."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.outbox import new_outbox_item
        from chalicelib.db.records import OrderEventRecord, OrderRecord

        # The after-sale window starts now: commissions may be earned sooner (M8).
        follow_up = [*follow_up, ("ORDER_COMPLETED", {"order_id": order_id, "completed_at": now})]
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(OrderEventRecord(order_id, event_id(now), kind="COMPLETED", detail={"cause": cause}, at=now))
                for kind, payload in follow_up:
                    tx.save(new_outbox_item(kind, payload, now))
                tx.update(OrderRecord(order_id),
                          actions=[OrderRecord.status.set("COMPLETED"), OrderRecord.completed_at.set(now),
                                   OrderRecord.fulfilling_shard.remove(), OrderRecord.version.add(1)],
                          condition=OrderRecord.status == "FULFILLING")
        except TransactWriteError as exc:
            if _failed_condition(list(exc.cancellation_reasons or []), 1 + len(follow_up)):
                raise OrderChanged(order_id) from exc
            raise

    def shipped_before(self, cutoff: float, limit: int = 100) -> list:
        from chalicelib.db.records import OrderRecord

        found = []
        for shard in range(FULFILLING_SHARDS):
            found += [to_order(r) for r in OrderRecord.fulfilling_by_shipped.query(
                f"F{shard}", OrderRecord.shipped_at <= cutoff, limit=limit)]
        return found

    def of_store(self, store_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import OrderRecord

        results = OrderRecord.by_store.query(store_id, limit=limit, scan_index_forward=False,
                                             last_evaluated_key=start or None)
        records = list(results)
        return [to_order(r) for r in records], results.last_evaluated_key

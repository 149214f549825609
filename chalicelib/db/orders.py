"""Orders: placing one (reserve every line + the order + its idempotency key in one
transaction), recording its prepay, applying a payment, and reading them back."""
from __future__ import annotations

import secrets
import time

from chalicelib.db import items
from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.domain.orders import Amounts, Order, OrderLine, OutOfStock


PENDING_SHARDS = 10


class KeyAlreadyUsed(Exception):
    """The idempotency key is already claimed (by this request earlier, or another)."""


class _Ignored(Exception):
    pass


class OrderChanged(Exception):
    """The order is no longer in the state the write expected."""


def event_id(at: float) -> str:
    """Sorts by business time, then by the wall clock's nanoseconds (two events in the
    same business millisecond keep the order they were written in)."""
    return f"{int(at * 1000):015d}#{time.time_ns():020d}{secrets.token_hex(2)}"


class OrderRepository:
    def __init__(self) -> None:
        bind_records()

    # --- reading what placing an order needs, in one round trip
    def load(self, customer_id: str, store_id: str | None, skus: list[str]):
        """(customer record, store record or None, {sku: product record}) in one BatchGetItem."""
        from chalicelib.db.records import CustomerRecord, ProductRecord, StoreRecord

        wanted = {CustomerRecord: [{"customer_id": {"S": customer_id}}],
                  ProductRecord: [{"sku": {"S": sku}} for sku in skus]}
        if store_id:
            wanted[StoreRecord] = [{"store_id": {"S": store_id}}]
        found = items.batch_get(wanted)
        customers = found.get(CustomerRecord, [])
        stores = found.get(StoreRecord, [])
        return (customers[0] if customers else None, stores[0] if stores else None,
                {p.sku: p for p in found.get(ProductRecord, [])})

    def get_store(self, store_id: str):
        from chalicelib.db.records import StoreRecord

        return items.get(StoreRecord, store_id)

    # --- placing
    def place(self, order: Order, idempotency: dict, now: float) -> None:
        """Reserve every line, write the order, claim the key: all or nothing.

        Raises OutOfStock naming the first line that could not be reserved, or
        KeyAlreadyUsed when the idempotency key was claimed first.
        """
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import IdempotencyRecord, OrderEventRecord, OrderRecord, StockRecord

        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                for line in order.lines:
                    tx.update(StockRecord(line.ship_from, line.sku),
                              actions=[StockRecord.available.add(-line.quantity),
                                       StockRecord.reserved.add(line.quantity),
                                       StockRecord.updated_at.set(now)],
                              condition=StockRecord.available >= line.quantity)
                tx.save(_order_record(order), condition=OrderRecord.order_id.does_not_exist())
                tx.save(IdempotencyRecord(**idempotency),
                        condition=IdempotencyRecord.scope_key.does_not_exist()
                        | (IdempotencyRecord.expires_at < _utc(now)))
                tx.save(OrderEventRecord(order.order_id, event_id(now), kind="CREATED",
                                         detail={"payable_fen": order.amounts.payable_fen}, at=now))
        except TransactWriteError as exc:
            # PynamoDB sends puts before updates: [order, key, event, line 0, line 1, ...]
            reasons = list(exc.cancellation_reasons or [])
            if _failed_condition(reasons, 1):
                raise KeyAlreadyUsed() from exc
            for index, line in enumerate(order.lines):
                if _failed_condition(reasons, 3 + index):
                    raise OutOfStock(f"Not enough stock of {line.sku}.", sku=line.sku,
                                     location_id=line.ship_from) from exc
            raise

    def record_prepay(self, order_id: str, prepay_id: str, now: float, idempotency_key: str | None,
                      response: dict | None) -> None:
        """Store the prepay id and, in the same transaction, what the key answers from now on."""
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import IdempotencyRecord, OrderRecord

        with TransactWrite(connection=transaction_connection()) as tx:
            tx.update(OrderRecord(order_id), actions=[OrderRecord.prepay_id.set(prepay_id),
                                                      OrderRecord.prepay_at.set(now)],
                      condition=OrderRecord.order_id.exists())
            if idempotency_key:
                tx.update(IdempotencyRecord(idempotency_key),
                          actions=[IdempotencyRecord.state.set("DONE"),
                                   IdempotencyRecord.response_status.set(response["status"]),
                                   IdempotencyRecord.response_body.set(response["body"])],
                          condition=IdempotencyRecord.scope_key.exists())

    # --- idempotency keys
    def mark_prepay_failed(self, scope_key: str) -> None:
        """The order stands, its prepay did not: a retry with the same key resumes it."""
        from chalicelib.db.records import IdempotencyRecord

        try:
            items.update(IdempotencyRecord, (scope_key,), [IdempotencyRecord.state.set("PREPAY_FAILED")],
                         IdempotencyRecord.state == "IN_PROGRESS", _Ignored())
        except _Ignored:
            pass  # already finished or failed: nothing to mark

    def get_key(self, scope_key: str):
        from chalicelib.db.records import IdempotencyRecord

        return items.get(IdempotencyRecord, scope_key)

    def finish_key(self, scope_key: str, idempotency: dict, status: int, body: dict) -> None:
        """Remember a refusal (e.g. OUT_OF_STOCK) under a key the failed transaction never wrote."""
        from pynamodb.exceptions import PutError

        from chalicelib.db.records import IdempotencyRecord

        record = IdempotencyRecord(**{**idempotency, "state": "DONE", "response_status": status,
                                      "response_body": body})
        try:
            record.save(condition=IdempotencyRecord.scope_key.does_not_exist()
                        | (IdempotencyRecord.expires_at < _utc(idempotency["created_at"])))
        except PutError as exc:
            if not items.is_condition_failure(exc):
                raise

    # --- reading orders
    def get(self, order_id: str) -> Order | None:
        from chalicelib.db.records import OrderRecord

        record = items.get(OrderRecord, order_id)
        return to_order(record) if record else None

    def of_customer(self, customer_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import OrderRecord

        bind_records()
        results = OrderRecord.by_customer.query(customer_id, limit=limit, scan_index_forward=False,
                                                last_evaluated_key=start or None)
        records = list(results)
        return [to_order(r) for r in records], results.last_evaluated_key


def _failed_condition(reasons: list, index: int) -> bool:
    return index < len(reasons) and reasons[index] is not None and reasons[index].code == "ConditionalCheckFailed"


def _utc(ts: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _order_record(order: Order):
    from chalicelib.db.records import OrderRecord

    return OrderRecord(
        order_id=order.order_id, customer_id=order.customer_id, store_id=order.store_id,
        dealer_id=order.dealer_id, sub_mchid=order.sub_mchid, status=order.status,
        lines=[l.to_json() for l in order.lines], subtotal_fen=order.amounts.subtotal_fen,
        discount_fen=order.amounts.discount_fen, payable_fen=order.amounts.payable_fen, refunded_fen=0,
        fulfillment=order.fulfillment, created_at=order.created_at, expires_at=order.expires_at, version=0,
        pending_shard=f"P{secrets.randbelow(PENDING_SHARDS)}")


def to_order(r) -> Order:
    return Order(
        order_id=r.order_id, customer_id=r.customer_id, store_id=r.store_id, dealer_id=r.dealer_id,
        sub_mchid=r.sub_mchid, status=r.status, lines=[OrderLine(**l) for l in r.lines],
        amounts=Amounts(int(r.subtotal_fen), int(r.discount_fen), int(r.payable_fen)),
        fulfillment=r.fulfillment or {}, created_at=float(r.created_at), expires_at=float(r.expires_at),
        paid_at=float(r.paid_at) if r.paid_at is not None else None, transaction_id=r.transaction_id,
        refunded_fen=int(r.refunded_fen or 0), prepay_id=r.prepay_id, shipping=r.shipping,
        shipped_at=float(r.shipped_at) if r.shipped_at is not None else None,
        completed_at=float(r.completed_at) if r.completed_at is not None else None)


class PaymentRepository:
    """Applying a provider's payment to an order: one conditional transaction."""

    def __init__(self) -> None:
        bind_records()

    def get_order(self, order_id: str):
        from chalicelib.db.records import OrderRecord

        return items.get(OrderRecord, order_id)

    def mark_paid(self, order_id: str, transaction_id: str, amount_fen: int, paid_at: float,
                  follow_up: list[tuple[str, dict]], now: float, ledger: tuple = (),
                  success_at: float | None = None) -> None:
        """PENDING_PAYMENT -> PAID, the history, the ledger's PAYMENT entry (``ledger``:
        domain LedgerEntry objects) and the follow-up outbox items (work and funnel
        events), all or nothing. The order goes on the ``paid_by_day`` index under the
        Beijing day of the provider's ``success_at`` (else of ``paid_at``): the nightly
        reconciliation's payments of a day.

        Raises OrderChanged when the order is not (any more) pending with that amount.
        TransactionConflict (a concurrent transaction on the same items) propagates as
        TransactWriteError for the caller to retry.
        """
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.outbox import new_outbox_item
        from chalicelib.db.records import OrderEventRecord, OrderRecord
        from chalicelib.db.ledger import ledger_day_shard, ledger_record

        paid_day = [OrderRecord.paid_day_shard.set(ledger_day_shard(order_id, paid_at if success_at is None
                                                                    else success_at))]
        if success_at is not None:
            paid_day.append(OrderRecord.success_at.set(success_at))
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.update(OrderRecord(order_id),
                          actions=[OrderRecord.status.set("PAID"), OrderRecord.paid_at.set(paid_at),
                                   OrderRecord.transaction_id.set(transaction_id), OrderRecord.version.add(1),
                                   OrderRecord.pending_shard.remove(), *paid_day],
                          condition=(OrderRecord.status == "PENDING_PAYMENT")
                          & (OrderRecord.payable_fen == amount_fen))
                tx.save(OrderEventRecord(order_id, event_id(now), kind="PAYMENT_APPLIED",
                                         detail={"transaction_id": transaction_id, "amount_fen": amount_fen}, at=now))
                for n, entry in enumerate(ledger):
                    tx.save(ledger_record(order_id, f"payment#{entry.cause}#{n}", entry, now))
                for kind, payload in follow_up:
                    tx.save(new_outbox_item(kind, payload, now))
        except TransactWriteError as exc:
            # PynamoDB sends puts before updates: [event, ledger..., outbox... (work and ORDER_PAID), order]
            if _failed_condition(list(exc.cancellation_reasons or []), 1 + len(ledger) + len(follow_up)):
                raise OrderChanged(order_id) from exc
            raise

    def close(self, order, cause: str, now: float, provider_closed: bool) -> None:
        """PENDING_PAYMENT -> CLOSED and every reserved line back on the shelf, once.

        Raises OrderChanged when the order is no longer pending (paid, or closed by
        another request first): nothing is released twice.
        """
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import OrderEventRecord, OrderRecord, StockRecord

        actions = [OrderRecord.status.set("CLOSED"), OrderRecord.version.add(1)]
        if provider_closed:
            actions.append(OrderRecord.pending_shard.remove())
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(OrderEventRecord(order.order_id, event_id(now), kind="CLOSED",
                                         detail={"cause": cause, "provider_closed": provider_closed}, at=now))
                tx.update(OrderRecord(order.order_id), actions=actions,
                          condition=OrderRecord.status == "PENDING_PAYMENT")
                for line in order.lines:
                    tx.update(StockRecord(line.ship_from, line.sku),
                              actions=[StockRecord.available.add(line.quantity),
                                       StockRecord.reserved.add(-line.quantity), StockRecord.updated_at.set(now)],
                              condition=StockRecord.reserved >= line.quantity)
        except TransactWriteError as exc:
            # puts before updates: [event, order, line 0, ...]
            if _failed_condition(list(exc.cancellation_reasons or []), 1):
                raise OrderChanged(order.order_id) from exc
            raise

    def provider_closed(self, order_id: str, now: float) -> None:
        """The provider's order is closed too: the close job can forget this order."""
        from chalicelib.db.records import OrderRecord

        try:
            items.update(OrderRecord, (order_id,), [OrderRecord.pending_shard.remove()],
                         OrderRecord.status == "CLOSED", _Ignored())
        except _Ignored:
            pass  # not closed here (yet): the job looks again

    def due_for_closing(self, now: float, limit: int = 100) -> list:
        """Orders whose payment window has passed and that may still need closing,
        from every shard of the sparse index (one Query per shard, no Scan)."""
        from chalicelib.db.records import OrderRecord

        due = []
        for shard in range(PENDING_SHARDS):
            due += [to_order(r) for r in OrderRecord.pending_by_expiry.query(
                f"P{shard}", OrderRecord.expires_at <= now, limit=limit)]
        return due

    def record_event(self, order_id: str, kind: str, detail: dict, now: float) -> None:
        from chalicelib.db.records import OrderEventRecord

        OrderEventRecord(order_id, event_id(now), kind=kind, detail=detail, at=now).save()

    def events(self, order_id: str) -> list:
        from chalicelib.db.records import OrderEventRecord

        return list(OrderEventRecord.query(order_id, consistent_read=True))

"""Refunds: asked (with the order's refund budget held in the same transaction),
attempted at the provider, and ended — each step one conditional write or transaction."""
from __future__ import annotations

import secrets

from chalicelib.db import items
from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.orders import OrderChanged, _failed_condition, _utc, event_id

OPEN_SHARDS = 10


class RefundChanged(Exception):
    """The refund is not (any more) in the state the write expected."""


def _sent(refund, now: float) -> None:
    """A refund record about to be put with an attempt to send: the Beijing day of ``now``
    on the ``requested_by_day`` index, and the attempt's ``requested_at``."""
    from chalicelib.db.ledger import ledger_day_shard

    refund.requested_day_shard = ledger_day_shard(refund.order_id, now)
    refund.attempts = [{**a, "requested_at": now} if a.get("out_refund_no") == refund.out_refund_no
                       and "requested_at" not in a else a for a in refund.attempts or []]


class RefundRepository:
    def __init__(self) -> None:
        bind_records()

    def order_record(self, order_id: str):
        from chalicelib.db.records import OrderRecord

        return items.get(OrderRecord, order_id)

    def get(self, refund_id: str):
        from chalicelib.db.records import RefundRecord

        return items.get(RefundRecord, refund_id)

    def of_order(self, order_id: str) -> list:
        from chalicelib.db.records import RefundRecord

        return list(RefundRecord.by_order.query(order_id))

    def ask(self, refund, order_version: int, attempt: int, idempotency: dict | None, now: float) -> None:
        """Put the refund, hold its amount on the order, claim the key: all or nothing.
        Raises OrderChanged when the order moved meanwhile (the caller re-plans), and
        KeyAlreadyUsed when the key was claimed first."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.orders import KeyAlreadyUsed
        from chalicelib.db.records import IdempotencyRecord, OrderEventRecord, OrderRecord, RefundRecord

        if refund.status == "PROCESSING":
            _sent(refund, now)   # asked straight away: on the reconciliation's day index
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(refund, condition=RefundRecord.refund_id.does_not_exist())
                tx.save(OrderEventRecord(refund.order_id, event_id(now), kind="REFUND_ASKED",
                                         detail={"refund_id": refund.refund_id, "amount_fen": int(refund.amount_fen),
                                                 "status": refund.status}, at=now))
                if idempotency:
                    tx.save(IdempotencyRecord(**idempotency),
                            condition=IdempotencyRecord.scope_key.does_not_exist()
                            | (IdempotencyRecord.expires_at < _utc(now)))
                tx.update(OrderRecord(refund.order_id),
                          actions=[OrderRecord.version.add(1), OrderRecord.refund_attempts.set(attempt),
                                   OrderRecord.refund_committed_fen.add(int(refund.amount_fen))],
                          condition=(OrderRecord.version == order_version))
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            # puts before updates: [refund, event, key?, order]
            if idempotency and _failed_condition(reasons, 2):
                raise KeyAlreadyUsed() from exc
            if _failed_condition(reasons, 3 if idempotency else 2):
                raise OrderChanged(refund.order_id) from exc
            raise

    def start_attempt(self, refund_id: str, expected_status: str, out_refund_no: str, attempts: list,
                      order_id: str, order_version: int, attempt: int, now: float) -> None:
        """REQUESTED (approved) or CLOSED (retried) -> PROCESSING with a new out_refund_no,
        numbered on the order, stored before the provider is called."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.ledger import ledger_day_shard
        from chalicelib.db.records import OrderRecord, RefundRecord

        attempts = [{**a, "requested_at": now} if a.get("out_refund_no") == out_refund_no and "requested_at" not in a
                    else a for a in attempts]
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.update(RefundRecord(refund_id),
                          actions=[RefundRecord.status.set("PROCESSING"), RefundRecord.out_refund_no.set(out_refund_no),
                                   RefundRecord.attempts.set(attempts), RefundRecord.provider_requested.remove(),
                                   RefundRecord.updated_at.set(now),
                                   RefundRecord.open_shard.set(f"R{secrets.randbelow(OPEN_SHARDS)}"),
                                   RefundRecord.requested_day_shard.set(ledger_day_shard(order_id, now))],
                          condition=RefundRecord.status == expected_status)
                tx.update(OrderRecord(order_id), actions=[OrderRecord.version.add(1),
                                                          OrderRecord.refund_attempts.set(attempt)],
                          condition=OrderRecord.version == order_version)
        except TransactWriteError as exc:
            raise RefundChanged(refund_id) from exc

    def mark(self, refund_id: str, expected_status: str, out_refund_no: str, actions_for, now: float) -> None:
        """One conditional update of the refund's current attempt (``actions_for(RefundRecord)``)."""
        from chalicelib.db.records import RefundRecord

        items.update(RefundRecord, (refund_id,), actions_for(RefundRecord) + [RefundRecord.updated_at.set(now)],
                     (RefundRecord.status == expected_status) & (RefundRecord.out_refund_no == out_refund_no),
                     RefundChanged(refund_id))

    def reject(self, refund, note: str, now: float) -> None:
        """REQUESTED -> REJECTED and the held amount given back to the order."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import OrderEventRecord, OrderRecord, RefundRecord

        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(OrderEventRecord(refund.order_id, event_id(now), kind="RETURN_REJECTED",
                                         detail={"refund_id": refund.refund_id, "note": note}, at=now))
                tx.update(RefundRecord(refund.refund_id), actions=[RefundRecord.status.set("REJECTED"),
                                                                   RefundRecord.updated_at.set(now)],
                          condition=RefundRecord.status == "REQUESTED")
                tx.update(OrderRecord(refund.order_id), actions=[
                    OrderRecord.refund_committed_fen.add(-int(refund.amount_fen)), OrderRecord.version.add(1)])
        except TransactWriteError as exc:
            raise RefundChanged(refund.refund_id) from exc

    def succeed(self, refund, order, full: bool, stock_moves: list[tuple[str, str, int, bool]],
                follow_up: list[tuple[str, dict]], now: float) -> None:
        """PROCESSING -> SUCCESS: the order's refunded amount rises (REFUNDED when all of it),
        units come back where they should, the split is unwound later (outbox)."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.ledger import ledger_record
        from chalicelib.db.outbox import new_outbox_item
        from chalicelib.db.records import OrderEventRecord, OrderRecord, RefundRecord, StockRecord
        from chalicelib.domain.splits import REFUND, REFUNDED, LedgerEntry, dealer_account

        order_actions = [OrderRecord.refunded_fen.add(int(refund.amount_fen)), OrderRecord.version.add(1)]
        order_condition = OrderRecord.refunded_fen == int(order.refunded_fen or 0)
        if full:
            order_actions += [OrderRecord.status.set("REFUNDED"), OrderRecord.fulfilling_shard.remove()]
            order_condition &= OrderRecord.status.is_in("PAID", "FULFILLING", "COMPLETED")
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(OrderEventRecord(refund.order_id, event_id(now), kind="REFUND_SUCCEEDED",
                                         detail={"refund_id": refund.refund_id, "amount_fen": int(refund.amount_fen),
                                                 "out_refund_no": refund.out_refund_no, "full": full}, at=now))
                for kind, payload in follow_up:
                    tx.save(new_outbox_item(kind, payload, now))
                if order.paid_at is not None and int(refund.amount_fen) > 0:
                    # The ledger: the customer's money back out of the dealer's account. (A late
                    # payment refunded after closing was never applied, so never entered.)
                    tx.save(ledger_record(refund.order_id, f"refund#{refund.refund_id}", LedgerEntry(
                        refund.order_id, REFUNDED, dealer_account(order.dealer_id), int(refund.amount_fen),
                        REFUND), now))
                tx.update(RefundRecord(refund.refund_id),
                          actions=[RefundRecord.status.set("SUCCESS"), RefundRecord.success_at.set(now),
                                   RefundRecord.updated_at.set(now), RefundRecord.open_shard.remove()],
                          condition=(RefundRecord.status == "PROCESSING")
                          & (RefundRecord.out_refund_no == refund.out_refund_no))
                tx.update(OrderRecord(refund.order_id), actions=order_actions, condition=order_condition)
                for location, sku, quantity, was_reserved in stock_moves:
                    actions = [StockRecord.available.add(quantity), StockRecord.updated_at.set(now)]
                    actions.append(StockRecord.reserved.add(-quantity) if was_reserved
                                   else StockRecord.on_hand.add(quantity))
                    tx.update(StockRecord(location, sku), actions=actions)
        except TransactWriteError as exc:
            raise RefundChanged(refund.refund_id) from exc

    def due(self, updated_before: float, limit: int = 100) -> list:
        from chalicelib.db.records import RefundRecord

        found = []
        for shard in range(OPEN_SHARDS):
            found += list(RefundRecord.open_by_update.query(f"R{shard}", RefundRecord.updated_at <= updated_before,
                                                            limit=limit))
        return found

    def record_event(self, order_id: str, kind: str, detail: dict, now: float) -> None:
        from chalicelib.db.records import OrderEventRecord

        OrderEventRecord(order_id, event_id(now), kind=kind, detail=detail, at=now).save()

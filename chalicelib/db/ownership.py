"""A customer's owning store, changed only together with its history entry."""
from __future__ import annotations

from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.orders import _failed_condition


class OwnerChanged(Exception):
    """The owner is not (any more) the one the decision was made against."""


class AlreadyRecorded(Exception):
    """This cause (e.g. this order) already changed the owner once."""


class _NotNewer(Exception):
    pass


class OwnershipRepository:
    def __init__(self) -> None:
        bind_records()

    def change(self, customer_id: str, expected_store: str | None, to_store: str, to_dealer: str | None,
               basis: str, reason: str, cause_key: str, at: float) -> None:
        """Move the owner, record the change and write CUSTOMER_BOUND, all or nothing.

        Raises AlreadyRecorded when this cause changed the owner before, OwnerChanged
        when the owner is no longer ``expected_store``.
        """
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.outbox import new_outbox_item
        from chalicelib.db.records import CustomerRecord, OwnershipChangeRecord
        from chalicelib.domain import events

        bound = events.customer_bound(customer_id=customer_id, from_store_id=expected_store, to_store_id=to_store,
                                      to_dealer_id=to_dealer, basis=basis, reason=reason, cause=cause_key, at=at)
        expected = (CustomerRecord.owning_store_id.does_not_exist() if expected_store is None
                    else CustomerRecord.owning_store_id == expected_store)
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(OwnershipChangeRecord(customer_id, f"{int(at * 1000):015d}#{cause_key}",
                                              from_store_id=expected_store, to_store_id=to_store,
                                              to_dealer_id=to_dealer, basis=basis, reason=reason, at=at),
                        condition=OwnershipChangeRecord.change_id.does_not_exist())
                tx.save(new_outbox_item(events.CUSTOMER_BOUND, bound, at))
                tx.update(CustomerRecord(customer_id),
                          actions=[CustomerRecord.owning_store_id.set(to_store),
                                   CustomerRecord.owning_dealer_id.set(to_dealer),
                                   CustomerRecord.owner_basis.set(basis),
                                   CustomerRecord.owned_since.set(at),
                                   # an owner ends the customer's wait for routing (route-traffic)
                                   CustomerRecord.awaiting_route.remove(), CustomerRecord.route_due_at.remove()],
                          condition=CustomerRecord.customer_id.exists() & expected)
        except TransactWriteError as exc:
            # PynamoDB sends puts before updates: [change, outbox, customer]
            reasons = list(exc.cancellation_reasons or [])
            if _failed_condition(reasons, 0):
                raise AlreadyRecorded(cause_key) from exc
            if _failed_condition(reasons, 2):
                raise OwnerChanged(customer_id) from exc
            raise

    def record_purchase(self, customer_id: str, order_id: str, store_id: str, paid_at: float) -> bool:
        """The customer's last purchase, unless a later one is already recorded (False)."""
        from chalicelib.db import items
        from chalicelib.db.records import CustomerRecord

        try:
            items.update(CustomerRecord, (customer_id,),
                         [CustomerRecord.last_purchase_at.set(paid_at), CustomerRecord.last_order_id.set(order_id),
                          CustomerRecord.last_purchase_store_id.set(store_id)],
                         CustomerRecord.customer_id.exists() & (CustomerRecord.last_purchase_at.does_not_exist()
                                                                | (CustomerRecord.last_purchase_at < paid_at)),
                         _NotNewer())
        except _NotNewer:
            return False
        return True

    def history(self, customer_id: str) -> list:
        from chalicelib.db.records import OwnershipChangeRecord

        return list(OwnershipChangeRecord.query(customer_id, consistent_read=True))

    def customer(self, customer_id: str):
        from chalicelib.db import items
        from chalicelib.db.records import CustomerRecord

        return items.get(CustomerRecord, customer_id)

"""Customers and the WeChat identities that lead to them."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.items import is_condition_failure
from chalicelib.domain.customers import (
    Customer,
    CustomerAlreadyCreated,
    WeChatIdentity,
    identity_key,
)


class CustomerRepository:
    def __init__(self) -> None:
        bind_records()

    def get(self, customer_id: str) -> Customer | None:
        from chalicelib.db.records import CustomerRecord

        try:
            record = CustomerRecord.get(customer_id, consistent_read=True)
        except CustomerRecord.DoesNotExist:
            return None
        return _to_customer(record)

    def find_by_identity(self, identity: WeChatIdentity) -> str | None:
        """The customer_id behind this identity (unionid first), or None."""
        from chalicelib.db.records import CustomerIdentityRecord

        for key in identity.lookup_keys():
            try:
                return CustomerIdentityRecord.get(key, consistent_read=True).customer_id
            except CustomerIdentityRecord.DoesNotExist:
                continue
        return None

    def add_first_seen(self, customer: Customer) -> None:
        """Create the customer and claim its identities in one transaction.

        Raises CustomerAlreadyCreated when any identity is already claimed, so a
        concurrent first login for the same person yields one customer, not two.
        """
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import CustomerIdentityRecord, CustomerRecord

        record = _to_record(customer)
        identities = [CustomerIdentityRecord(identity=key, customer_id=customer.customer_id,
                                             created_at=customer.first_seen_at)
                      for key in WeChatIdentity(customer.openid, customer.unionid).lookup_keys()]
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(record, condition=CustomerRecord.customer_id.does_not_exist())
                for identity in identities:
                    tx.save(identity, condition=CustomerIdentityRecord.identity.does_not_exist())
        except TransactWriteError as exc:
            if is_condition_failure(exc):
                raise CustomerAlreadyCreated(customer.customer_id) from exc
            raise

    def attach_identity(self, customer_id: str, kind: str, value: str, at: float) -> bool:
        """Link one more identity to an existing customer; False if already linked anywhere."""
        from pynamodb.exceptions import PutError

        from chalicelib.db.records import CustomerIdentityRecord

        item = CustomerIdentityRecord(identity=identity_key(kind, value), customer_id=customer_id,
                                      created_at=at)
        try:
            item.save(condition=CustomerIdentityRecord.identity.does_not_exist())
        except PutError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def learn_openid(self, customer_id: str, openid: str, at: float) -> bool:
        """Give a customer first seen through the official account its mini-program openid
        (and the identity that finds it); False if it already had one."""
        from chalicelib.db.records import CustomerRecord

        try:
            items.update(CustomerRecord, (customer_id,), [CustomerRecord.openid.set(openid)],
                         CustomerRecord.customer_id.exists() & CustomerRecord.openid.does_not_exist(),
                         _HadOpenid())
        except _HadOpenid:
            return False
        self.attach_identity(customer_id, "openid", openid, at)
        return True

    def record_login(self, customer_id: str, at: float, unionid: str | None) -> Customer:
        """Stamp the latest login; learn the unionid if WeChat only now gives it."""
        from chalicelib.db.records import CustomerRecord

        actions = [CustomerRecord.last_seen_at.set(at)]
        if unionid:
            actions.append(CustomerRecord.unionid.set(CustomerRecord.unionid | unionid))
        record = CustomerRecord(customer_id=customer_id)
        record.update(actions=actions, condition=CustomerRecord.customer_id.exists())
        return _to_customer(record)


class _HadOpenid(Exception):
    pass


def _to_record(customer: Customer):
    from chalicelib.db.records import CustomerRecord

    return CustomerRecord(
        customer_id=customer.customer_id,
        openid=customer.openid,
        unionid=customer.unionid,
        first_seen_at=customer.first_seen_at,
        last_seen_at=customer.last_seen_at,
        owning_store_id=customer.owning_store_id,
        owning_dealer_id=customer.owning_dealer_id,
        points_balance=customer.points_balance,
        promoter_status=customer.promoter_status,
    )


def _to_customer(record) -> Customer:
    return Customer(
        customer_id=record.customer_id,
        openid=record.openid,
        unionid=record.unionid,
        first_seen_at=float(record.first_seen_at),
        last_seen_at=float(record.last_seen_at),
        owning_store_id=record.owning_store_id,
        owning_dealer_id=record.owning_dealer_id,
        points_balance=int(record.points_balance or 0),
        promoter_status=record.promoter_status or "NONE",
    )

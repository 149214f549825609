"""What the route-traffic job reads and writes (issue M11).

* the queue: customers with a location and no owner, from the sparse index
  ``customers.awaiting_route_by_due`` (one Query per shard R0..R9, no Scan);
* an assignment: one transaction — the customer's owner (on condition that nobody owns
  them yet), its history entry in ``ownership_changes`` and a ``CUSTOMER_BOUND`` outbox
  event (the funnel counts bindings) — so a scan that got there first wins and the run
  skips the customer, never overwrites it;
* each store's assignments per Beijing day (``routing_counts``, only ever added to), so
  daily caps hold across runs;
* a lease per job (``job_leases``), so a second run started meanwhile exits at once;
* each run's report (``routing_runs``), and a city's stores (``stores.by_city``).
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.db import items
from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.domain.routing import Candidate

PAGE = 500                         # queue entries per page: one lease renewal, one round of writes
CUSTOMERS_PER_TRANSACTION = 25     # three items each: within DynamoDB's 100 per transaction
COUNTS_PER_TRANSACTION = 100
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class RoutedChoice:
    """One customer's routed store, as the job chose it."""
    customer_id: str
    store_id: str
    dealer_id: str | None
    basis: str                 # attribution.ROUTED
    reason: str                # attribution.ROUTED_TO_NEAREST (the history's reason)
    route_reason: str          # routing's: NEAREST, ROTATED_WITHIN_TOLERANCE, NEAREST_UNCAPPED
    distance_m: float | None   # None for a city-only customer


@dataclass(frozen=True)
class PendingCustomer:
    """A queue entry, as the (eventually consistent) index shows it."""
    customer_id: str
    route_due_at: float
    owning_store_id: str | None
    location_kind: str | None
    lat: float | None
    lng: float | None
    city: str | None


@dataclass(frozen=True)
class Lease:
    acquired: bool
    holder: str
    lease_until: float


class _NotApplied(Exception):
    pass


def _pending(record) -> PendingCustomer:
    return PendingCustomer(record.customer_id, float(record.route_due_at), record.owning_store_id,
                           record.location_kind,
                           float(record.location_lat) if record.location_lat is not None else None,
                           float(record.location_lng) if record.location_lng is not None else None,
                           record.location_city)


class RoutingRepository:
    def __init__(self) -> None:
        bind_records()

    # --- the queue -------------------------------------------------------------------
    def pending(self, shard: str, due_by: float, start: dict | None = None,
                limit: int = PAGE) -> tuple[list[PendingCustomer], dict | None]:
        """One page of a shard's queue, due first: (customers due by ``due_by``, the key
        to go on from, or None)."""
        from chalicelib.db.records import CustomerRecord

        results = CustomerRecord.awaiting_route_by_due.query(
            shard, CustomerRecord.route_due_at <= due_by, limit=limit, last_evaluated_key=start or None)
        return [_pending(r) for r in results], results.last_evaluated_key

    def assign(self, choices: list[RoutedChoice], run_id: str, at: float) -> list[bool]:
        """Give each customer their routed store: per customer, the owner (only if nobody
        owns them yet), its history entry and a CUSTOMER_BOUND event, all or nothing.
        Up to ``CUSTOMERS_PER_TRANSACTION`` customers share one transaction; a customer
        whose condition fails (a scan or a purchase got there first) is left out and the
        others are written again. Returns, per choice, whether it was written."""
        written = [False] * len(choices)
        for first in range(0, len(choices), CUSTOMERS_PER_TRANSACTION):
            group = list(range(first, min(first + CUSTOMERS_PER_TRANSACTION, len(choices))))
            for index in self._assign_group([choices[i] for i in group], run_id, at):
                written[group[index]] = True
        return written

    def _assign_group(self, choices: list[RoutedChoice], run_id: str, at: float) -> list[int]:
        """The indexes of ``choices`` written; the lost ones are dropped and the rest retried."""
        import hashlib
        import time

        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.outbox import new_outbox_item
        from chalicelib.db.records import CustomerRecord as C
        from chalicelib.db.records import OwnershipChangeRecord
        from chalicelib.domain import events

        cause = f"route#{run_id}"
        remaining = list(range(len(choices)))
        for attempt in range(MAX_ATTEMPTS):
            if not remaining:
                return []
            # The same customers in a retried request: DynamoDB answers the first result
            # again instead of failing the conditions the first attempt already met.
            token = hashlib.sha256(f"{run_id}|{attempt}|{'|'.join(choices[i].customer_id for i in remaining)}"
                                   .encode()).hexdigest()[:36]
            try:
                with TransactWrite(connection=transaction_connection(), client_request_token=token) as tx:
                    for i in remaining:   # puts go first, in this order: [history, event] per customer
                        c = choices[i]
                        tx.save(OwnershipChangeRecord(c.customer_id, f"{int(at * 1000):015d}#{cause}",
                                                      from_store_id=None, to_store_id=c.store_id,
                                                      to_dealer_id=c.dealer_id, basis=c.basis, reason=c.reason,
                                                      at=at),
                                condition=OwnershipChangeRecord.change_id.does_not_exist())
                        tx.save(new_outbox_item(events.CUSTOMER_BOUND, events.customer_bound(
                            customer_id=c.customer_id, from_store_id=None, to_store_id=c.store_id,
                            to_dealer_id=c.dealer_id, basis=c.basis, reason=c.reason, cause=cause, at=at), at))
                    for i in remaining:   # then the customers, in the same order
                        c = choices[i]
                        actions = [C.owning_store_id.set(c.store_id), C.owner_basis.set(c.basis),
                                   C.owned_since.set(at), C.route_reason.set(c.route_reason),
                                   C.route_run_id.set(run_id), C.awaiting_route.remove(), C.route_due_at.remove(),
                                   C.owning_dealer_id.set(c.dealer_id) if c.dealer_id else C.owning_dealer_id.remove(),
                                   C.route_distance_m.set(round(c.distance_m, 1)) if c.distance_m is not None
                                   else C.route_distance_m.remove()]
                        tx.update(C(c.customer_id), actions=actions,
                                  condition=C.customer_id.exists() & C.owning_store_id.does_not_exist())
            except TransactWriteError as exc:
                reasons = list(exc.cancellation_reasons or [])
                n = len(remaining)
                if len(reasons) != 3 * n:
                    raise
                codes = [(r.code if r is not None else None) for r in reasons]
                if any(code not in (None, "None", "ConditionalCheckFailed", "TransactionConflict") for code in codes):
                    raise
                lost = {remaining[k] for k in range(n)
                        if codes[2 * n + k] == "ConditionalCheckFailed" or codes[2 * k] == "ConditionalCheckFailed"}
                if not lost:
                    time.sleep(0.01 * 2 ** attempt)   # a conflict with another writer: try again
                remaining = [i for i in remaining if i not in lost]
                continue
            return remaining
        raise RuntimeError("route-traffic: assignments kept conflicting with other writers")

    def defer(self, customer_id: str, *, expected_due_at: float, due_at: float, route_reason: str,
              run_id: str) -> bool:
        """Nobody could take the customer: look again at ``due_at`` — unless their queue
        entry changed meanwhile (a new location, an owner), which wins."""
        from chalicelib.db.records import CustomerRecord as C

        try:
            items.update(C, (customer_id,), [C.route_due_at.set(due_at), C.route_reason.set(route_reason),
                                             C.route_run_id.set(run_id)],
                         C.awaiting_route.exists() & (C.route_due_at == expected_due_at)
                         & C.owning_store_id.does_not_exist(), _NotApplied())
        except _NotApplied:
            return False
        return True

    def dequeue_owned(self, customer_id: str) -> bool:
        """Drop the queue entry of a customer somebody owns (a writer that set the owner
        without removing it); only if they are owned."""
        from chalicelib.db.records import CustomerRecord as C

        try:
            items.update(C, (customer_id,), [C.awaiting_route.remove(), C.route_due_at.remove()],
                         C.awaiting_route.exists() & C.owning_store_id.exists(), _NotApplied())
        except _NotApplied:
            return False
        return True

    # --- daily counts ----------------------------------------------------------------
    def assigned_on(self, day: str) -> dict[str, int]:
        """store_id -> customers routed to it on ``day`` (Beijing): the day's partition,
        paged (one item per store that got anyone)."""
        from chalicelib.db.records import RoutingCountRecord

        return {r.store_id: int(r.assigned or 0) for r in RoutingCountRecord.query(day, consistent_read=True)}

    def count_rows(self, day: str) -> list:
        from chalicelib.db.records import RoutingCountRecord

        return list(RoutingCountRecord.query(day, consistent_read=True))

    def add_assigned(self, day: str, added: dict[str, tuple[int, str | None]], at: float, request_key: str) -> None:
        """ADD each store's new assignments (store_id -> (how many, its dealer)): up to 100
        stores per transaction, each with a token made from ``request_key`` so a request
        the SDK retries after a timeout is applied once (a bare ADD retried would count twice)."""
        import hashlib
        import time

        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import RoutingCountRecord as R

        stores = sorted(added)
        for chunk, first in enumerate(range(0, len(stores), COUNTS_PER_TRANSACTION)):
            token = hashlib.sha256(f"{request_key}|{chunk}".encode()).hexdigest()[:36]
            for attempt in range(MAX_ATTEMPTS):
                try:
                    with TransactWrite(connection=transaction_connection(), client_request_token=token) as tx:
                        for store_id in stores[first:first + COUNTS_PER_TRANSACTION]:
                            count, dealer_id = added[store_id]
                            actions = [R.assigned.add(count), R.updated_at.set(at)]
                            if dealer_id:
                                actions.append(R.dealer_id.set(dealer_id))
                            tx.update(R(day, store_id), actions=actions)
                    break
                except TransactWriteError as exc:
                    codes = {r.code for r in exc.cancellation_reasons or [] if r is not None}
                    if not codes or codes - {"TransactionConflict"} or attempt == MAX_ATTEMPTS - 1:
                        raise
                    time.sleep(0.01 * 2 ** attempt)

    # --- the lease -------------------------------------------------------------------
    def take_lease(self, job: str, holder: str, until: float, now: float) -> Lease:
        """Take the job's lease if nobody holds it (or theirs ran out); else who holds it."""
        from pynamodb.exceptions import PutError

        from chalicelib.db.records import JobLeaseRecord as L

        try:
            L(job, holder=holder, lease_until=until, acquired_at=now).save(
                condition=L.job.does_not_exist() | (L.lease_until < now))
        except PutError as exc:
            if not items.is_condition_failure(exc):
                raise
            current = items.get(L, job)
            if current is None:
                return self.take_lease(job, holder, until, now)
            return Lease(False, current.holder, float(current.lease_until))
        return Lease(True, holder, until)

    def renew_lease(self, job: str, holder: str, until: float) -> bool:
        from chalicelib.db.records import JobLeaseRecord as L

        try:
            items.update(L, (job,), [L.lease_until.set(until)], L.holder == holder, _NotApplied())
        except _NotApplied:
            return False
        return True

    def release_lease(self, job: str, holder: str, at: float) -> bool:
        """Give the lease back (it ends now), if still ours."""
        from chalicelib.db.records import JobLeaseRecord as L

        try:
            items.update(L, (job,), [L.lease_until.set(at), L.released_at.set(at)], L.holder == holder,
                         _NotApplied())
        except _NotApplied:
            return False
        return True

    # --- runs ------------------------------------------------------------------------
    def save_run(self, day: str, run_id: str, *, started_at: float, finished_at: float, outcome: str, stats: dict,
                 report: dict) -> None:
        from chalicelib.db.records import RoutingRunRecord

        items.create(RoutingRunRecord(day, run_id, started_at=started_at, finished_at=finished_at, outcome=outcome,
                                      stats=stats, report=report))

    def runs_on(self, day: str) -> list:
        from chalicelib.db.records import RoutingRunRecord

        return list(RoutingRunRecord.query(day, consistent_read=True))

    # --- a city's stores -------------------------------------------------------------
    def stores_in_city(self, city: str) -> list[Candidate]:
        """Every store whose ``city`` is ``city`` (any status: the caller keeps the suitable)."""
        from chalicelib.db.records import StoreRecord

        return [Candidate(store_id=r.store_id, lat=float(r.lat), lng=float(r.lng),
                          services=frozenset(r.services or ()), opening_hours=r.opening_hours or {},
                          status=r.status, score=float(getattr(r, "service_score", None) or 0),
                          dealer_id=r.dealer_id, name=r.name)
                for r in StoreRecord.by_city.query(city)]

"""The route-traffic job (every 15 minutes, domain rule 4): customers who have a location
and no store are given the nearest suitable store, fairly among equally near ones,
under daily caps (``routing.assign_store``), as a provisional ``ROUTED`` owner that their
own first scan or purchase overrides (``attribution.on_routing``).

A run:

1. takes the job's lease (``job_leases``): a run that finds it held exits at once and
   says so (``LEASE_HELD``); the lease is renewed after every page and given back at
   the end, so a crashed run holds it for ``LEASE_S`` at most;
2. reads today's counts per store (Beijing day of the run's start) so caps hold across
   runs;
3. reads the queue (``customers.awaiting_route_by_due``, shard by shard, due first) page
   by page. For each customer: the candidates — ``finder.nearest(lat, lng, service=…,
   k=…, include_closed=True, open_first=False)`` at their cell's centre (a routed
   customer belongs to the nearest store whether or not it is open now; one lookup per
   distinct centre per run), or, for a city-only customer, the city's active stores,
   all at distance 0 so that they take turns — then ``assign_store`` with the configured
   tolerance and caps, each choice counted before the next;
4. writes each choice as one conditional transaction (owner only if nobody owns the
   customer yet, with its history entry and CUSTOMER_BOUND event): a lost condition
   means a scan or a purchase got there first, and the customer is skipped, never
   overwritten. Nobody to take them (every candidate capped, or none in reach): the
   customer is looked at again later (``routing_config.retry_at``). The page's new
   assignments are then ADDed to the day's counts;
5. stores the run's report (``routing_runs``, when it read anyone) and logs it as JSON.

Two runs at once cannot assign anyone twice (the conditional write), and should not both
run (the lease). A second run right after the first reads an empty queue: it changes
nothing. A crash between a page's assignments and their count ADD under-counts that page
(caps may then let through one page more that day); nobody is assigned twice.
"""
from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass

from chalicelib.domain import attribution, routing
from chalicelib.domain.locations import CELL, CITY, ROUTE_SHARDS
from chalicelib.domain.network import ACTIVE
from chalicelib.domain.routing_config import RoutingSettings, retry_at
from chalicelib.log import get_logger

JOB = "route-traffic"
LEASE_S = 300.0           # renewed after every page: a crashed run blocks the job this long at most
WRITERS = 8               # concurrent assignment writes (decisions stay sequential)

# How a run ended
DONE = "DONE"
LEASE_HELD = "LEASE_HELD"            # another run holds the lease: this one did nothing
LEASE_LOST = "LEASE_LOST"            # the lease ran out under us: stopped after the page
OUT_OF_TIME = "OUT_OF_TIME"          # the time budget is spent: the rest waits for the next run


@dataclass
class RunStats:
    read: int = 0                    # queue entries read
    assigned: int = 0
    lost_to_owner: int = 0           # somebody owned them by the time we wrote: skipped
    already_owned: int = 0           # owned customers still in the queue: dropped from it
    deferred_capped: int = 0         # every candidate at its cap: again tomorrow
    deferred_no_candidates: int = 0  # nothing suitable in reach: again in a day
    unlocated: int = 0               # a queue entry without a usable location (should not happen)
    finder_lookups: int = 0
    city_lookups: int = 0
    pages: int = 0


def new_run_id(now: float) -> str:
    return f"rt_{int(now * 1000):015d}_{secrets.token_hex(3)}"


class _Run:
    def __init__(self, finder, routing_db, settings: RoutingSettings, now: float, run_id: str, writers: int):
        self.finder, self.db, self.settings, self.now, self.run_id = finder, routing_db, settings, now, run_id
        self.day = attribution.beijing_day(now)
        self.counts: Counter = Counter(routing_db.assigned_on(self.day))
        self.stats = RunStats()
        self.reported: list[routing.Assignment] = []
        self._near: dict[tuple[float, float], tuple[routing.Ranked, ...]] = {}
        self._city: dict[str, tuple[routing.Ranked, ...]] = {}
        self._pool = None
        if writers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="route-traffic")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # --- candidates ----------------------------------------------------------------
    def look_up(self, customers: list) -> None:
        """The page's points not looked up yet this run, in parallel (each a few Queries)."""
        points = sorted({(c.lat, c.lng) for c in customers if not c.owning_store_id and c.location_kind == CELL
                         and c.lat is not None and c.lng is not None} - set(self._near))
        if not points:
            return

        def nearest(point):
            return point, self.finder.nearest(point[0], point[1], service=self.settings.service, k=self.settings.k,
                                              now_ts=self.now, include_closed=True, open_first=False).stores

        for point, stores in self._map(nearest, points):
            self._near[point] = stores
        self.stats.finder_lookups += len(points)

    def candidates(self, customer) -> tuple[routing.Ranked, ...] | None:
        if customer.location_kind == CITY and customer.city:
            if customer.city not in self._city:
                self.stats.city_lookups += 1
                service = self.settings.service
                self._city[customer.city] = tuple(
                    routing.Ranked(store, 0.0, routing.is_open(store.opening_hours, self.now))
                    for store in self.db.stores_in_city(customer.city)
                    if store.status == ACTIVE and (service is None or service in store.services))
            return self._city[customer.city]
        if customer.location_kind == CELL and customer.lat is not None and customer.lng is not None:
            return self._near[(customer.lat, customer.lng)]          # looked up with the page
        return None

    # --- one page --------------------------------------------------------------------
    def page(self, customers: list) -> None:
        s = self.settings
        self.look_up(customers)
        decided = []
        for customer in customers:
            self.stats.read += 1
            if customer.owning_store_id:
                self.stats.already_owned += self.db.dequeue_owned(customer.customer_id)
                continue
            candidates = self.candidates(customer)
            if candidates is None:
                # Should not happen (a queue entry always comes with a location): looked at
                # again in a day rather than read on every run.
                self.stats.unlocated += 1
                decided.append((customer, routing.Assignment(customer.customer_id, None, None, None,
                                                             routing.NO_CANDIDATES)))
                continue
            choice = routing.assign_store(customer.customer_id, candidates, assigned_today=self.counts,
                                          caps=s.store_daily_caps, default_cap=s.daily_cap_per_store,
                                          tolerance_m=s.tolerance_m, tolerance_ratio=s.tolerance_ratio)
            if choice.store_id is not None:
                self.counts[choice.store_id] += 1      # counted before the next choice
            decided.append((customer, choice))
        written = self._write(decided)
        added: dict[str, tuple[int, str | None]] = {}
        for (customer, choice), applied in zip(decided, written):
            if choice.store_id is None:
                if choice.reason == routing.ALL_CAPPED:
                    self.stats.deferred_capped += 1
                else:
                    self.stats.deferred_no_candidates += 1
                self.reported.append(choice)
            elif applied:
                self.stats.assigned += 1
                count, _ = added.get(choice.store_id, (0, None))
                added[choice.store_id] = (count + 1, choice.dealer_id)
                self.reported.append(choice)
            else:
                self.counts[choice.store_id] -= 1      # a scan or a purchase got there first
                self.stats.lost_to_owner += 1
        if added:
            # One ADD per store that got anyone on this page, in transactions of 100 stores.
            self.db.add_assigned(self.day, added, self.now, request_key=f"{self.run_id}#{self.stats.pages}")
        self.stats.pages += 1

    def _map(self, work, items: list) -> list:
        return list(self._pool.map(work, items) if self._pool else map(work, items))

    def _write(self, decided: list) -> list[bool]:
        """Assignments in transactions of a few customers each, deferrals one conditional
        update each, spread over the writers; per decision, whether it was written."""
        from chalicelib.db.routing import CUSTOMERS_PER_TRANSACTION, RoutedChoice

        routed, deferred = [], []
        for k, (customer, choice) in enumerate(decided):
            if choice.store_id is None:
                deferred.append(k)
                continue
            decision = attribution.on_routing(None, choice.store_id)
            routed.append((k, RoutedChoice(customer.customer_id, choice.store_id, choice.dealer_id or None,
                                           decision.basis, decision.reason, choice.reason,
                                           choice.distance_m if customer.location_kind == CELL else None)))
        groups = [routed[i:i + CUSTOMERS_PER_TRANSACTION] for i in range(0, len(routed), CUSTOMERS_PER_TRANSACTION)]
        written = [False] * len(decided)
        for group, flags in zip(groups, self._map(
                lambda group: self.db.assign([c for _, c in group], self.run_id, self.now), groups)):
            for (k, _), flag in zip(group, flags):
                written[k] = flag

        def defer(k: int) -> bool:
            customer, choice = decided[k]
            return self.db.defer(customer.customer_id, expected_due_at=customer.route_due_at,
                                 due_at=retry_at(choice.reason, self.now), route_reason=choice.reason,
                                 run_id=self.run_id)

        for k, flag in zip(deferred, self._map(defer, deferred)):
            written[k] = flag
        return written


def route_traffic(*, finder, routing_db, settings: RoutingSettings, now: float, clock=None, run_id: str | None = None,
                  writers: int = WRITERS, time_budget_s: float | None = None, monotonic=time.monotonic) -> dict:
    """One run. ``finder``: ``nearest(lat, lng, *, service, k, now_ts, include_closed,
    open_first) -> routing.NearestResult`` (``wiring.store_finder()``); ``routing_db``: a
    ``db.routing.RoutingRepository``; ``clock``: business time now (lease renewals);
    ``time_budget_s``: stop taking pages after this long (a Lambda's remaining time)."""
    log = get_logger("storelink.jobs")
    clock = clock or (lambda: now)
    run_id = run_id or new_run_id(now)
    lease = routing_db.take_lease(JOB, run_id, now + LEASE_S, now)
    if not lease.acquired:
        from chalicelib.domain.time import rfc3339

        result = {"run_id": run_id, "outcome": LEASE_HELD, "lease_holder": lease.holder,
                  "lease_until": rfc3339(lease.lease_until)}
        log.info("route-traffic: another run holds the lease; this one does nothing", extra={"fields": result})
        return result
    started = monotonic()
    run = _Run(finder, routing_db, settings, now, run_id, writers)
    outcome = DONE
    try:
        for shard in range(ROUTE_SHARDS):
            start = None
            while True:
                if time_budget_s is not None and monotonic() - started > time_budget_s:
                    outcome = OUT_OF_TIME
                    break
                customers, start = routing_db.pending(f"R{shard}", now, start)
                if customers:
                    run.page(customers)
                    if not routing_db.renew_lease(JOB, run_id, clock() + LEASE_S):
                        outcome = LEASE_LOST
                        break
                if not start:
                    break
            if outcome != DONE:
                break
    finally:
        run.close()
        routing_db.release_lease(JOB, run_id, clock())
    report = routing.dealer_balance(run.reported)
    stats = asdict(run.stats)
    if run.stats.read:
        routing_db.save_run(run.day, run_id, started_at=now, finished_at=clock(), outcome=outcome, stats=stats,
                            report={**report.to_json(), "settings": settings.to_json()})
    result = {"run_id": run_id, "outcome": outcome, "day": run.day, **stats, "by_dealer": report.by_dealer,
              "dealer_share": report.dealer_share, "by_reason": report.by_reason}
    log.info("route-traffic", extra={"fields": {**result, "by_store": report.by_store,
                                                "seconds": round(monotonic() - started, 3)}})
    return result

"""What the nightly reconciliation (M13) keeps: one report per Beijing day in
``reconciliation_reports``, and the day's lease in ``job_leases``.

A report is written whole or not at all, and only when its content is new:

* its parts first — the summary cells of each sub-merchant, the discrepancies (with their
  repair) in chunks of ``CHUNK`` and the ledger breaks — under keys that start with the
  first 16 hex digits of the content's sha256 (``<h>#S#<sub>``, ``<h>#D#<sub>#<n>``,
  ``<h>#L#<sub>#<n>``), so two writers can never mix their parts;
* then the HEAD item, conditionally on the revision it replaces (or on its absence):
  readers follow HEAD's ``content_hash`` to the parts in force. A run whose content hash
  equals HEAD's writes nothing at all.

An item holds at most ``CHUNK`` discrepancies (~0.5 KB each): far below DynamoDB's 400 KB.
Parts of a replaced revision stay (a few KB a day; the CSV of each revision is archived
by ``report_files`` anyway).

The lease (``job_leases``, job ``reconcile#<day>``): a conditional put on absence or on
expiry (business time), renewed while a long day is read, given back at the end.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.db import items

HEAD = "HEAD"
CHUNK = 200                     # discrepancies (or ledger breaks) per item
HASH_PREFIX = 16                # hex digits of the content hash in the parts' keys
WAITING, REFUSED, DONE = "WAITING", "REFUSED", "DONE"


@dataclass(frozen=True)
class Lease:
    acquired: bool
    holder: str
    lease_until: float


@dataclass(frozen=True)
class Saved:
    written: bool               # False: the same content was in force already (or another run wrote first)
    revision: int


class _NotApplied(Exception):
    pass


def lease_job(day: str) -> str:
    return f"reconcile#{day}"


class ReconciliationReportRepository:
    # --- the day's lease ---------------------------------------------------------------
    def take_lease(self, day: str, holder: str, until: float, now: float) -> Lease:
        from pynamodb.exceptions import PutError

        from chalicelib.db.records import JobLeaseRecord as L

        items.bind_records()
        job = lease_job(day)
        for _ in range(3):
            try:
                L(job, holder=holder, lease_until=until, acquired_at=now).save(
                    condition=L.job.does_not_exist() | (L.lease_until < now))
                return Lease(True, holder, until)
            except PutError as exc:
                if not items.is_condition_failure(exc):
                    raise
            current = items.get(L, job)
            if current is not None:
                return Lease(False, current.holder, float(current.lease_until))
        raise RuntimeError(f"the lease of {job} could not be read or taken")

    def renew_lease(self, day: str, holder: str, until: float) -> bool:
        from chalicelib.db.records import JobLeaseRecord as L

        try:
            items.update(L, (lease_job(day),), [L.lease_until.set(until)], L.holder == holder, _NotApplied())
        except _NotApplied:
            return False
        return True

    def release_lease(self, day: str, holder: str, at: float) -> bool:
        from chalicelib.db.records import JobLeaseRecord as L

        try:
            items.update(L, (lease_job(day),), [L.lease_until.set(at), L.released_at.set(at)], L.holder == holder,
                         _NotApplied())
        except _NotApplied:
            return False
        return True

    # --- the report ----------------------------------------------------------------------
    def head(self, day: str):
        from chalicelib.db.records import ReconciliationReportRecord as R

        return items.get(R, day, HEAD)

    def note_waiting(self, day: str, retry_at: float, now: float, brand_id: str | None) -> bool:
        """A day with no report yet: HEAD says WAITING (once; a report in force is left alone)."""
        from pynamodb.exceptions import PutError

        from chalicelib.db.records import ReconciliationReportRecord as R

        items.bind_records()
        try:
            R(day, HEAD, status=WAITING, revision=0, body={"retry_at": int(retry_at)}, brand_id=brand_id,
              created_at=now).save(condition=R.day.does_not_exist())
        except PutError as exc:
            if items.is_condition_failure(exc):
                return False
            raise
        return True

    def save(self, day: str, *, status: str, content_hash: str, head_body: dict, cells: dict[str, list],
             discrepancies: dict[str, list], ledger_breaks: dict[str, list], brand_id: str | None,
             now: float) -> Saved:
        """The day's report, if its content is new (see the module). ``cells``,
        ``discrepancies`` and ``ledger_breaks``: sub_mchid -> rows (JSON-able dicts)."""
        from pynamodb.exceptions import UpdateError

        from chalicelib.db.records import ReconciliationReportRecord as R

        items.bind_records()
        current = self.head(day)
        if current is not None and current.content_hash == content_hash:
            return Saved(False, int(current.revision or 0))
        h = content_hash[:HASH_PREFIX]
        parts = [R(day, f"{h}#S#{sub}", sub_mchid=sub, body={"cells": rows}, created_at=now)
                 for sub, rows in sorted(cells.items())]
        for letter, grouped, name in (("D", discrepancies, "discrepancies"), ("L", ledger_breaks, "ledger_breaks")):
            for sub, rows in sorted(grouped.items()):
                for n, first in enumerate(range(0, len(rows), CHUNK)):
                    parts.append(R(day, f"{h}#{letter}#{sub}#{n:05d}", sub_mchid=sub,
                                   body={name: rows[first:first + CHUNK]}, created_at=now))
        items.batch_write(parts)      # fresh keys (the hash): nothing of the report in force is touched
        revision = int(current.revision or 0) + 1 if current is not None else 1
        actions = [R.status.set(status), R.revision.set(revision), R.content_hash.set(content_hash),
                   R.body.set(head_body), R.updated_at.set(now)]
        if brand_id:
            actions.append(R.brand_id.set(brand_id))
        record = R(day, HEAD)
        try:
            if current is None:
                record.update(actions=actions + [R.created_at.set(now)], condition=R.day.does_not_exist())
            else:
                record.update(actions=actions, condition=R.revision == int(current.revision or 0))
        except UpdateError as exc:
            if items.is_condition_failure(exc):
                again = self.head(day)
                return Saved(False, int(again.revision or 0) if again is not None else 0)
            raise
        return Saved(True, revision)

    def read(self, day: str, sub_mchid: str | None = None) -> dict | None:
        """The report in force: ``{"head": record, "cells": [...], "discrepancies": [...],
        "ledger_breaks": [...]}`` (only ``sub_mchid``'s parts if given); None: no report."""
        from chalicelib.db.records import ReconciliationReportRecord as R

        head = self.head(day)
        if head is None:
            return None
        found = {"head": head, "cells": [], "discrepancies": [], "ledger_breaks": []}
        if not head.content_hash:
            return found
        h = head.content_hash[:HASH_PREFIX]
        prefixes = ([f"{h}#S#{sub_mchid}", f"{h}#D#{sub_mchid}#", f"{h}#L#{sub_mchid}#"] if sub_mchid
                    else [f"{h}#"])
        for prefix in prefixes:
            for part in R.query(day, R.item.startswith(prefix), consistent_read=True):
                if sub_mchid and part.item.split("#")[1] == "S" and part.sub_mchid != sub_mchid:
                    continue      # <h>#S#<sub> is also the prefix of a longer sub_mchid's key
                for name in ("cells", "discrepancies", "ledger_breaks"):
                    found[name].extend(part.body.get(name) or ())
        return found


# --- the provider's fee, from the bill ---------------------------------------------------------

FEE_ENTRY = "fit#FEE#0"        # the key the split plan's fit books the fee under (services/settlement.py)


def book_provider_fee(order_id: str, fee_fen: int, at: float) -> bool:
    """The provider's fee of a paid order, as its bill says, on the ledger's FEE account
    (provider_fee <- the order's dealer) under the fit's own key: put only if nothing is
    booked there yet, so it is written once whoever comes first. False: already booked
    (or the order is unknown / the fee is not positive)."""
    from pynamodb.exceptions import PutError

    from chalicelib.db.ledger import ledger_record
    from chalicelib.db.records import LedgerEntryRecord, OrderRecord
    from chalicelib.domain import splits as rules

    if type(fee_fen) is not int or fee_fen <= 0:
        return False
    order = items.get(OrderRecord, order_id)
    if order is None:
        return False
    entry = rules.LedgerEntry(order_id, rules.PROVIDER_FEE, rules.dealer_account(order.dealer_id), fee_fen, rules.FEE)
    try:
        ledger_record(order_id, FEE_ENTRY, entry, at).save(condition=LedgerEntryRecord.entry_id.does_not_exist())
    except PutError as exc:
        if items.is_condition_failure(exc):
            return False
        raise
    return True

"""Carrying split plans out (M9): the plans due for their next step, each step written on
the plan's version in one transaction with the ledger entries and commission changes it
causes, and the receivers added with each sub-merchant."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.ledger import ledger_record
from chalicelib.db.orders import _failed_condition

DUE_SHARDS = 10


def due_shard(order_id: str) -> str:
    import zlib

    return f"S{zlib.crc32(order_id.encode()) % DUE_SHARDS}"


class SettlementRepository:
    def __init__(self) -> None:
        bind_records()

    def due(self, now: float, limit: int = 200) -> list[str]:
        """Order ids of unfinished plans whose next step is due (one Query per shard, oldest
        first; the index is eventually consistent, so each plan is read again before use)."""
        from chalicelib.db.records import SplitPlanRecord

        found = []
        for shard in range(DUE_SHARDS):
            found += [r.order_id for r in SplitPlanRecord.settling_by_due.query(
                f"S{shard}", SplitPlanRecord.next_action_at <= now, limit=limit)]
        return found

    def load(self, order_id: str):
        from chalicelib.db.records import SplitPlanRecord

        return items.get(SplitPlanRecord, order_id)

    def save(self, record, *, settlement: dict, now: float, next_action_at: float | None, plan: dict | None = None,
             status: str | None = None, entries: tuple = (), paid_commissions: tuple = (),
             cut_commissions: tuple = (), alerts: tuple = (), cancelled: tuple = (), clawbacks: tuple = (),
             recoveries: tuple = (), reservations: tuple = (), releases: tuple = ()) -> bool:
        """One step: the plan's new settlement state (and plan, status, next time) on its
        version, with the ledger ``entries`` (key, LedgerEntry), the commissions now PAID
        (records), the commissions cut by a refit ((record, fen cut)) and the alerts the
        step raises (records: written with the step, so a crash cannot lose one); for a
        refund (M10) the commissions it cancels ((record, fen)) and the clawbacks it opens
        (new records); for a final split the clawbacks its parts keep back (``reservations``
        (record, fen), as it is stored), and at its end those recovered ((record, fen,
        LedgerEntry on the clawed-back order)) or ``releases`` (a closed part) — all or
        nothing. False when another run moved the plan first."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.reconciliation_day import accepted_operations
        from chalicelib.db.records import CommissionRecord, PromoterRecord, SplitPlanRecord

        # The reconciliation's day index: operations this step records as accepted by the provider
        sent = accepted_operations(record, settlement, now)
        actions = [SplitPlanRecord.settlement.set(settlement), SplitPlanRecord.version.set(int(record.version) + 1)]
        if plan is not None:
            actions.append(SplitPlanRecord.plan.set(plan))
        if status is not None:
            actions.append(SplitPlanRecord.status.set(status))
        if next_action_at is None:
            actions += [SplitPlanRecord.due_shard.remove(), SplitPlanRecord.next_action_at.remove()]
        else:
            actions += [SplitPlanRecord.due_shard.set(due_shard(record.order_id)),
                        SplitPlanRecord.next_action_at.set(next_action_at)]
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.update(SplitPlanRecord(record.order_id), actions=actions,
                          condition=SplitPlanRecord.version == int(record.version))
                for key, entry in entries:
                    tx.save(ledger_record(record.order_id, key, entry, now, dealer_id=record.dealer_id))
                for alert in alerts:
                    tx.save(alert)
                for clawback in clawbacks:
                    tx.save(clawback, condition=CommissionRecord.commission_id.does_not_exist())
                for clawback, fen, entry in recoveries:
                    tx.save(ledger_record(entry.order_id, f"clawback#{record.order_id}#{clawback.commission_id}",
                                          entry, now))
                for op in sent:
                    tx.save(op)
                # One update per promoter (a transaction touches an item once): their totals.
                totals: dict[str, dict[str, int]] = {}

                def move(promoter_id: str, name: str, fen: int) -> None:
                    totals.setdefault(promoter_id, {})
                    totals[promoter_id][name] = totals[promoter_id].get(name, 0) + fen

                for commission in paid_commissions:
                    amount = int(commission.amount_fen)
                    tx.update(CommissionRecord(commission.promoter_id, commission.commission_id),
                              actions=[CommissionRecord.status.set("PAID"), CommissionRecord.paid_at.set(now)],
                              condition=CommissionRecord.status == "EARNED")
                    move(commission.promoter_id, "earned_fen", -amount)
                    move(commission.promoter_id, "paid_fen", amount)
                for commission, fen in cancelled:
                    # PENDING or EARNED (a PAID one is clawed back instead): its amount and the
                    # promoter's matching total go down together.
                    gone = int(commission.amount_fen) == fen
                    tx.update(CommissionRecord(commission.promoter_id, commission.commission_id),
                              actions=[CommissionRecord.amount_fen.add(-fen)]
                              + ([CommissionRecord.status.set("CANCELLED"), CommissionRecord.pending_shard.remove()]
                                 if gone else []),
                              condition=(CommissionRecord.status == commission.status)
                              & (CommissionRecord.amount_fen >= fen))
                    move(commission.promoter_id, "pending_fen" if commission.status == "PENDING" else "earned_fen",
                         -fen)
                for clawback in clawbacks:
                    move(clawback.promoter_id, "clawback_owed_fen", int(clawback.owed_fen))
                for clawback, fen in reservations:
                    tx.update(CommissionRecord(clawback.promoter_id, clawback.commission_id),
                              actions=[CommissionRecord.owed_fen.add(-fen)],
                              condition=(CommissionRecord.status == "OWED") & (CommissionRecord.owed_fen >= fen))
                    move(clawback.promoter_id, "clawback_owed_fen", -fen)
                for clawback, fen in releases:
                    tx.update(CommissionRecord(clawback.promoter_id, clawback.commission_id),
                              actions=[CommissionRecord.owed_fen.add(fen)], condition=CommissionRecord.status == "OWED")
                    move(clawback.promoter_id, "clawback_owed_fen", fen)
                for clawback, fen, _ in {r[0].commission_id: r for r in recoveries}.values():
                    if int(clawback.owed_fen or 0) == 0:     # nothing more owed (kept back in full)
                        tx.update(CommissionRecord(clawback.promoter_id, clawback.commission_id),
                                  actions=[CommissionRecord.status.set("RECOVERED"),
                                           CommissionRecord.pending_shard.remove()],
                                  condition=(CommissionRecord.status == "OWED") & (CommissionRecord.owed_fen == 0))
                for clawback, fen, _ in recoveries:
                    # what the promoter was paid, net: the commission kept back pays the old one
                    move(clawback.promoter_id, "paid_fen", -fen)
                for commission, cut in cut_commissions:
                    tx.update(CommissionRecord(commission.promoter_id, commission.commission_id),
                              actions=[CommissionRecord.amount_fen.add(-cut)],
                              condition=CommissionRecord.status == "PENDING")
                    move(commission.promoter_id, "pending_fen", -cut)
                for promoter_id, changes in sorted(totals.items()):
                    actions = [getattr(PromoterRecord, name).add(fen) for name, fen in sorted(changes.items()) if fen]
                    if actions:
                        tx.update(PromoterRecord(promoter_id), actions=actions)
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            # Another run wrote this plan first (its version moved), or is writing it right
            # now (DynamoDB cancels one of two transactions on the same item): either way
            # this run stops here and the plan is read again at the next run.
            plan_index = len(entries) + len(alerts) + len(clawbacks) + len(recoveries) + len(sent)   # puts go first
            if _failed_condition(reasons, plan_index) or any(r is not None and r.code == "TransactionConflict"
                                                    for r in reasons):
                return False
            raise
        return True

    def open_clawbacks(self, promoter_id: str, dealer_id: str) -> list:
        """The promoter's clawbacks still owed on this dealer's sales, oldest first (one
        Query on the promoter's own commissions)."""
        from chalicelib.db.records import CommissionRecord

        return [c for c in CommissionRecord.query(promoter_id, CommissionRecord.commission_id.startswith("clawback#"),
                                                  consistent_read=True)
                if c.status == "OWED" and c.dealer_id == dealer_id and int(c.owed_fen or 0) > 0]

    def bring_commissions_forward(self, order_id: str, due_at: float, attempts: int = 3) -> bool:
        """The after-sale window closes before day 25: the final split is due then. Written
        on the version, so a job run that read the old date cannot put it back."""
        from chalicelib.db.records import SplitPlanRecord

        for _ in range(attempts):
            record = self.load(order_id)
            if record is None or record.commission_due_at is None or float(record.commission_due_at) <= due_at:
                return False
            actions = [SplitPlanRecord.commission_due_at.set(due_at), SplitPlanRecord.version.set(int(record.version) + 1)]
            if record.next_action_at is not None and float(record.next_action_at) > due_at:
                actions.append(SplitPlanRecord.next_action_at.set(due_at))
            try:
                items.update(SplitPlanRecord, (order_id,), actions, SplitPlanRecord.version == int(record.version),
                             _Moved())
            except _Moved:
                continue
            return True
        return False

    # --- receivers added with each sub-merchant ------------------------------------------------

    def receiver_added(self, sub_mchid: str, receiver: str) -> bool:
        from chalicelib.db.records import SplitReceiverRecord

        return items.get(SplitReceiverRecord, sub_mchid, receiver) is not None

    def mark_receiver_added(self, sub_mchid: str, receiver: str, now: float) -> None:
        from chalicelib.db.records import SplitReceiverRecord

        SplitReceiverRecord(sub_mchid, receiver, added_at=now).save()


class _Moved(Exception):
    pass

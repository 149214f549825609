"""The nightly reconciliation (M13) on moto, with the bills and the repairs played by fakes
(and the real repairs against the in-memory provider): every class of discrepancy is
reported with its order id, repairs are applied once, a re-run writes nothing, the day's
lease keeps a second run out, a refused bill applies nothing, and the back office sees a
report only within its reach."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from chalicelib import auth
from chalicelib.domain.bills import PAYMENT, REFUND, SPLIT, BillTotals, SharingRow, TradeRow
from chalicelib.domain.reconciliation import DayKeys, OurPayment, OurRefund, OurSharingLine
from chalicelib.domain.time import BEIJING
from chalicelib.services import reconcile as rc
from chalicelib.services import wiring

DAY = "2026-03-01"
NOW = datetime(2026, 3, 2, 10, 30, tzinfo=BEIJING).timestamp()
SHU, YANGTZE = "1900001001", "1900001003"       # the demo dealers' sub-merchants (dealer-shu, dealer-yangtze)
PROMOTER = "o_promoter_abcdef"


# --- the fakes ----------------------------------------------------------------------------------

@dataclass
class FakeBill:
    kind: str
    outcome: str = "READY"
    lines: list = field(default_factory=list)
    retry_at: int | None = None
    reason: str | None = None
    detail: dict = field(default_factory=dict)
    closed: bool = False

    @property
    def hash_value(self):
        return "a" * 40 if self.outcome == "READY" else None

    @property
    def totals(self):
        return BillTotals(len(self.lines), {}) if self.outcome == "READY" else None

    def rows(self):
        return iter(self.lines)

    def close(self):
        self.closed = True


class FakeRepairs:
    """Records what it was asked to repair; answers as the real paths would."""

    def __init__(self):
        self.asked, self.fees = [], []

    def repair(self, f):
        self.asked.append((f.outcome, f.kind, f.order_id))
        return rc.Repairs.repair.__get__(self)(f)

    def missed_payment(self, order_id):
        return (rc.LATE_PAYMENT_REFUNDED, "refund rf_late") if order_id == "o-closed" else (rc.NO_SUCH_ORDER, "")

    def missed_result(self, order_id, out_no, theirs):
        return rc.RESULT_RECORDED, f"{out_no} is DONE here now"

    def book_fee(self, order_id, fee_fen):
        self.fees.append((order_id, fee_fen))
        return rc.FEE_BOOKED


class FakeFiles:
    def __init__(self):
        self.written = []

    def write(self, day, text):
        self.written.append((day, text))
        return f"mem://{day}.csv"


def pay_row(otn, total, sub=SHU, fee=None, line=2):
    fee = (total * 6 + 500) // 1000 if fee is None else fee
    return TradeRow(PAYMENT, "2026-03-01 12:00:00", sub, "42" + otn, otn, "", "", "SUCCESS", "", total, total, 0, 0,
                    fee, "store=x", line)


def refund_row(otn, orn, amount, sub=SHU, line=9):
    return TradeRow(REFUND, "2026-03-01 13:00:00", sub, "42" + otn, otn, "50" + orn, orn, "REFUND", "SUCCESS", 0, 0,
                    amount, amount, -1, "store=x", line)


def split_row(otn, receiver, amount, status="SUCCESS", sub=SHU, line=2):
    return SharingRow(SPLIT, "2026-03-01 14:00:00", sub, "42" + otn, "30" + otn, "d1", f"{otn}-S01", "MERCHANT_ID",
                      receiver, amount, status, "品牌货款分账", line)


def the_day():
    """Our side and the bills' side of one day with one discrepancy of every class."""
    keys = DayKeys(DAY, payments={
        "o-ok": OurPayment("o-ok", SHU, 10000, "PAID", "42o-ok", 60),
        "o-amount": OurPayment("o-amount", SHU, 10000, "PAID", "42o-amount", None),      # AMOUNT_DIFFERS
        "o-there": OurPayment("o-there", YANGTZE, 5000, "PAID", "42o-there", 30),        # MISSING_THERE
        "o-nofee": OurPayment("o-nofee", YANGTZE, 20000, "COMPLETED", "42o-nofee", None),  # fee to book
    }, refunds={
        "o-ok-R1": OurRefund("o-ok-R1", "o-ok", SHU, 1000, "SUCCESS"),
    }, sharing={
        ("o-ok-S01", "1900000200"): OurSharingLine(SPLIT, "o-ok-S01", "o-ok", SHU, "1900000200", 2000, "SUCCESS"),
        ("o-poll-S01", "1900000200"): OurSharingLine(SPLIT, "o-poll-S01", "o-poll", SHU, "1900000200", 900,
                                                    "PROCESSING"),                     # STATUS_DIFFERS: result missed
        ("o-sd-S01", PROMOTER): OurSharingLine(SPLIT, "o-sd-S01", "o-sd", SHU, PROMOTER, 300, "SUCCESS"),
    })
    trade = [pay_row("o-ok", 10000, fee=60), pay_row("o-amount", 9000), pay_row("o-closed", 7000),   # MISSING_HERE
             pay_row("o-nofee", 20000, YANGTZE), refund_row("o-ok", "o-ok-R1", 1000),
             refund_row("o-ok", "o-ok-R9", 500)]                                       # MISSING_HERE: missed refund
    sharing = [split_row("o-ok", "1900000200", 2000), split_row("o-poll", "1900000200", 900),
               split_row("o-sd", PROMOTER, 301)]                                        # SPLIT_DIFFERS
    return keys, trade, sharing


EXPECTED = {("AMOUNT_DIFFERS", "PAYMENT", "o-amount", "REPORTED"),
            ("MISSING_HERE", "PAYMENT", "o-closed", "LATE_PAYMENT_REFUNDED"),
            ("MISSING_THERE", "PAYMENT", "o-there", "REPORTED"),
            ("MISSING_HERE", "REFUND", "o-ok", "NEEDS_PERSON"),
            ("STATUS_DIFFERS", "SPLIT", "o-poll", "RESULT_RECORDED"),
            ("SPLIT_DIFFERS", "SPLIT", "o-sd", "REPORTED")}


@pytest.fixture
def world(dynamodb):
    from chalicelib.db.reconciliation_reports import ReconciliationReportRepository

    keys, trade, sharing = the_day()
    bills = {"ALL": FakeBill("ALL", lines=trade), "PROFITSHARING": FakeBill("PROFITSHARING", lines=sharing)}
    ledger_asked = []

    def ledger(day, order_ids):
        ledger_asked.append(list(order_ids))
        return [{"order_id": "o-there", "sub_mchid": YANGTZE, "problem": "balances do not sum to 0."}]

    c = rc.Collaborators(fetch_bill=lambda day, kind: bills[kind], day_keys=lambda day: keys,
                         reports=ReconciliationReportRepository(), files=FakeFiles(), repairs=FakeRepairs(),
                         ledger=ledger, brand_id="brand-lumen")
    c.bills, c.ledger_asked = bills, ledger_asked
    return c


def report_items(day=DAY):
    from chalicelib.db.records import ReconciliationReportRecord

    return sorted((r.item, json.dumps(r.body, sort_keys=True), r.updated_at) for r in
                  ReconciliationReportRecord.query(day, consistent_read=True))


# --- the run -------------------------------------------------------------------------------------

def test_every_class_is_reported_with_its_order_id_and_its_repair(world):
    answer = rc.reconcile(DAY, world, NOW)

    assert (answer["status"], answer["ok"], answer["written"], answer["revision"]) == ("DONE", False, True, 1)
    assert (answer["discrepancies"], answer["ledger_breaks"]) == (6, 1)
    assert answer["remaining"] == 4            # RESULT_RECORDED and LATE_PAYMENT_REFUNDED are resolved
    report = world.reports.read(DAY)
    assert {(d["class"], d["kind"], d["order_id"], d["repair"]) for d in report["discrepancies"]} == EXPECTED
    assert report["ledger_breaks"] == [{"order_id": "o-there", "sub_mchid": YANGTZE,
                                        "problem": "balances do not sum to 0."}]
    assert {"o-ok", "o-amount", "o-there", "o-nofee", "o-poll", "o-sd", "o-closed"} <= set(world.ledger_asked[0])
    # The provider's fee is booked where nothing was: o-amount (9000 in the bill) and o-nofee.
    assert sorted(world.repairs.fees) == [("o-amount", 54), ("o-nofee", 120)]
    [amount] = [d for d in report["discrepancies"] if d["order_id"] == "o-amount"]
    assert (amount["ours_fen"], amount["theirs_fen"], amount["diff_fen"], amount["our_fee_fen"]) == (10000, 9000,
                                                                                                   -1000, 54)
    # The CSV: the domain's sections, then each repair and the ledger breaks.
    [(day, text)] = world.files.written
    lines = text.splitlines()
    assert day == DAY and lines[0].startswith("section,day,sub_mchid,class,kind,order_id")
    assert sum(line.startswith("discrepancy,") for line in lines) == 6
    assert f"repair,{DAY},{SHU},MISSING_HERE,REFUND,o-ok,o-ok-R9,,NEEDS_PERSON," in text
    assert f"ledger_break,{DAY},{YANGTZE},o-there,balances do not sum to 0." in text
    assert all(b.closed for b in world.bills.values())


def test_a_second_run_writes_nothing_and_asks_no_repair_twice_that_was_done(world):
    first = rc.reconcile(DAY, world, NOW)
    before = report_items()
    world.files.written.clear()
    again = rc.reconcile(DAY, world, NOW + 3600)

    assert (again["written"], again["revision"]) == (False, first["revision"])
    assert report_items() == before
    assert world.files.written == []
    assert world.reports.head(DAY).revision == 1


def test_a_changed_day_is_a_new_revision_and_readers_see_only_it(world):
    rc.reconcile(DAY, world, NOW)
    keys = world.day_keys(DAY)
    world.day_keys = lambda day: DayKeys(DAY, {k: v for k, v in keys.payments.items() if k != "o-there"},
                                         keys.refunds, keys.sharing)
    answer = rc.reconcile(DAY, world, NOW + 60)

    assert (answer["written"], answer["revision"], answer["discrepancies"]) == (True, 2, 5)
    assert "o-there" not in {d["order_id"] for d in world.reports.read(DAY)["discrepancies"]}


def test_the_lease_keeps_a_second_run_out_of_the_day(world):
    lease = world.reports.take_lease(DAY, "rc_other", NOW + 900, NOW)
    assert lease.acquired

    answer = rc.reconcile(DAY, world, NOW + 1)

    assert (answer["status"], answer["ok"], answer["held_by"]) == ("BUSY", False, "rc_other")
    assert world.reports.head(DAY) is None and world.repairs.asked == []
    # Once the holder's lease runs out (a crashed run), the day is free again.
    assert rc.reconcile(DAY, world, NOW + 901)["status"] == "DONE"
    # And a finished run gives the lease back.
    assert world.reports.take_lease(DAY, "rc_next", NOW + 2000, NOW + 902).acquired


def test_a_refused_bill_is_reported_and_nothing_is_applied(world):
    world.bills["ALL"] = FakeBill("ALL", outcome="REFUSED", reason="HASH_MISMATCH",
                                  detail={"problem": "sha1 differs"})
    answer = rc.reconcile(DAY, world, NOW)

    assert (answer["status"], answer["ok"]) == ("REFUSED", False)
    assert world.repairs.asked == [] and world.repairs.fees == [] and world.ledger_asked == []
    head = world.reports.head(DAY)
    assert head.status == "REFUSED" and head.body["refused"][0]["reason"] == "HASH_MISMATCH"
    assert rc.reconcile(DAY, world, NOW + 5)["written"] is False


def test_bills_not_there_yet_are_waited_for(world):
    world.bills["PROFITSHARING"] = FakeBill("PROFITSHARING", outcome="NOT_YET", retry_at=int(NOW) + 1800)
    answer = rc.reconcile(DAY, world, NOW)

    assert (answer["status"], answer["ok"], answer["retry_at"]) == ("WAITING", False, int(NOW) + 1800)
    assert world.reports.head(DAY).status == "WAITING" and world.repairs.asked == []
    world.bills["PROFITSHARING"] = FakeBill("PROFITSHARING", lines=the_day()[2])
    assert rc.reconcile(DAY, world, NOW + 1800)["revision"] == 1      # the report replaces WAITING


def test_an_empty_day_is_a_day_with_nothing_at_the_provider(world):
    world.bills = {"ALL": FakeBill("ALL", outcome="EMPTY"), "PROFITSHARING": FakeBill("PROFITSHARING", outcome="EMPTY")}
    world.fetch_bill = lambda day, kind: world.bills[kind]
    world.day_keys = lambda day: DayKeys(DAY, {}, {}, {})
    world.ledger = lambda day, order_ids: []
    answer = rc.reconcile(DAY, world, NOW)
    assert (answer["status"], answer["ok"], answer["discrepancies"]) == ("DONE", True, 0)


def test_the_day_by_default_is_the_beijing_day_before():
    assert rc.day_to_reconcile(NOW) == DAY
    assert rc.day_to_reconcile(NOW, "2026-01-31") == "2026-01-31"
    with pytest.raises(ValueError):
        rc.day_to_reconcile(NOW, "2026-1-31")


# --- the real repairs --------------------------------------------------------------------------

from tests.unit.test_closing import SP, place  # noqa: E402
from tests.unit.test_orders import STORE, shop  # noqa: E402,F401 - the fixture


def real_repairs(shop, now):  # noqa: F811
    from chalicelib.db.reconciliation_reports import book_provider_fee
    from chalicelib.services.refunds import refund_late_payment

    def late(transaction, record):
        refund_late_payment(transaction, record, refunds=wiring.refunds(), payments=shop.payments, now=now,
                            notify_url="http://127.0.0.1:9/")

    return rc.Repairs(payment_records=wiring.payment_records(), refunds=wiring.refunds(), provider=shop.payments,
                      settle_poll=lambda order_id, out_no: None, on_late_payment=late,
                      book_fee_once=book_provider_fee, now=now, **SP)


def test_money_that_reached_a_closed_order_is_refunded_once_however_often_it_is_found(shop):  # noqa: F811
    order = place(shop, "late")
    oid = order["order_id"]
    shop.client.http.post(f"/v1/orders/{oid}/cancel", headers={"Authorization": f"Bearer {shop.token()}"})
    shop.payments.pay(oid)                                    # paid anyway, nobody told us (unknown_payment)
    repairs = real_repairs(shop, wiring.now())

    assert repairs.missed_payment(oid)[0] == rc.LATE_PAYMENT_REFUNDED
    refunds = wiring.refunds().of_order(oid)
    assert [(r.refund_id, int(r.amount_fen)) for r in refunds] == [(f"rf_late_{oid}", order["amounts"]["payable_fen"])]
    events = len(wiring.payment_records().events(oid))
    assert repairs.missed_payment(oid)[0] == rc.LATE_PAYMENT_REFUNDED     # the next run: nothing new
    assert len(wiring.payment_records().events(oid)) == events and len(wiring.refunds().of_order(oid)) == 1
    assert wiring.orders().get(oid).status == "CLOSED"


def test_a_payment_nobody_told_us_of_goes_through_the_callbacks_path_once(shop):  # noqa: F811
    order = place(shop, "silent")
    oid = order["order_id"]
    shop.payments.pay(oid)
    repairs = real_repairs(shop, wiring.now())

    assert repairs.missed_payment(oid)[0] == rc.APPLIED
    assert wiring.orders().get(oid).status == "PAID"
    assert repairs.missed_payment(oid)[0] == rc.ALREADY_PAID
    assert repairs.missed_payment("no-such-order")[0] == rc.NO_SUCH_ORDER


def test_the_bills_fee_is_booked_once_under_the_fits_key(shop):  # noqa: F811
    order = place(shop, "fee")
    oid = order["order_id"]
    shop.payments.pay(oid)
    repairs = real_repairs(shop, wiring.now())
    repairs.missed_payment(oid)

    assert repairs.book_fee(oid, 121) == rc.FEE_BOOKED
    assert repairs.book_fee(oid, 121) == rc.FEE_ALREADY_BOOKED
    fees = [(e.entry_id, e.debit, int(e.amount_fen), e.cause) for e in wiring.splits().ledger(oid) if e.cause == "FEE"]
    assert fees == [("fit#FEE#0", "provider_fee", 121, "FEE")]
    from chalicelib.services.ledger_check import order_problem
    assert order_problem(oid, wiring.splits().ledger(oid)) is None      # still balances


# --- the back office ------------------------------------------------------------------------------

def office(shop, role, tenant):  # noqa: F811
    token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
    return {"Authorization": f"Bearer {token}"}


def get(shop, path, headers):  # noqa: F811
    response = shop.client.http.get(path, headers=headers)
    return response.status_code, json.loads(response.body)


def test_a_dealer_reads_only_its_own_sub_merchants_report(shop, monkeypatch):  # noqa: F811
    from chalicelib.db.reconciliation_reports import ReconciliationReportRepository

    keys, trade, sharing = the_day()
    bills = {"ALL": FakeBill("ALL", lines=trade), "PROFITSHARING": FakeBill("PROFITSHARING", lines=sharing)}
    c = rc.Collaborators(fetch_bill=lambda day, kind: bills[kind], day_keys=lambda day: keys,
                         reports=ReconciliationReportRepository(), files=FakeFiles(), repairs=FakeRepairs(),
                         ledger=lambda day, ids: [], brand_id="brand-lumen")
    rc.reconcile(DAY, c, wiring.now())
    path = f"/v1/admin/reconciliation/{DAY}"

    status, brand = get(shop, path, office(shop, "brand", "brand-lumen"))
    assert status == 200 and brand["scope"] == "ALL" and brand["counts"]["discrepancies"] == 6
    assert {d["sub_mchid"] for d in brand["discrepancies"]} == {SHU, YANGTZE}
    assert {c["sub_mchid"] for c in brand["summary"]} == {SHU, YANGTZE, "ALL"}
    [promoter_line] = [d for d in brand["discrepancies"] if d["order_id"] == "o-sd"]
    assert promoter_line["receiver"] == "o_p***ef"                        # an openid, masked

    status, shu = get(shop, path, office(shop, "dealer", "dealer-shu"))
    assert status == 200 and shu["scope"] == SHU
    assert {d["order_id"] for d in shu["discrepancies"]} == {"o-amount", "o-closed", "o-ok", "o-poll", "o-sd"}
    assert {c["sub_mchid"] for c in shu["summary"]} == {SHU}
    assert get(shop, f"{path}?sub_mchid={SHU}", office(shop, "dealer", "dealer-shu"))[0] == 200

    status, yangtze = get(shop, path, office(shop, "dealer", "dealer-yangtze"))
    assert status == 200 and {d["order_id"] for d in yangtze["discrepancies"]} == {"o-there"}

    status, error = get(shop, f"{path}?sub_mchid={YANGTZE}", office(shop, "dealer", "dealer-shu"))
    assert status == 404 and error["error"]["code"] == "NOT_FOUND"
    assert get(shop, path, office(shop, "brand", "brand-other"))[0] == 404
    assert get(shop, path, office(shop, "store", STORE))[0] == 403
    assert get(shop, "/v1/admin/reconciliation/2026-02-28", office(shop, "brand", "brand-lumen"))[0] == 404
    assert get(shop, "/v1/admin/reconciliation/yesterday", office(shop, "brand", "brand-lumen"))[0] == 400
    assert get(shop, path, {})[0] == 401


def test_the_reports_bucket_is_the_stages_setting():
    from pathlib import Path

    from infra.aws.drift import load_template

    template = load_template()
    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    assert template["Resources"]["ReportsBucket"]["Properties"]["BucketName"] == {
        "Fn::Sub": "storelink-${Stage}-reconciliation-reports"}
    for stage in ("dev", "prod"):
        assert config["stages"][stage]["environment_variables"]["REPORTS_BUCKET"] == \
            f"storelink-{stage}-reconciliation-reports"
    policy = template["Resources"]["ReportsAccessPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "ReconcileRole"}]


def test_the_progress_bar_draws_only_on_a_terminal():
    import io

    from chalicelib.jobs.progress import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    shown, hidden = Terminal(), io.StringIO()
    for stream in (shown, hidden):
        bar = ProgressBar("reconcile 2026-03-01", stream)
        bar(1000, 2000)
        bar(2000, 2000)
        bar.close()
    assert "[" + "#" * 30 + "] 2,000/2,000 rows" in shown.getvalue() and shown.getvalue().endswith("\n")
    assert hidden.getvalue() == ""

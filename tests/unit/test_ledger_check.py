"""The nightly ledger check (M10) on moto: one Beijing day's orders are found through
``by_day``, each order's whole ledger is checked, and an order that does not balance is
an alert, once."""
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.clock import business_clock
from chalicelib.db.ledger import ledger_record
from chalicelib.db.ledger_days import LedgerDayRepository
from chalicelib.domain import splits as rules
from chalicelib.domain.time import BEIJING, beijing_date
from chalicelib.services import wiring
from chalicelib.services.ledger_check import ALERT_KIND, check_ledgers
from chalicelib.services.splits import on_plan_split
from tests.unit.test_fulfilment import paid_order
from tests.unit.test_orders import shop  # noqa: F401 - the fixture
from tests.unit.test_refunds import ask, settle

DAY = 86400


class ReadSpy:
    """The splits repository, noting whose ledgers were read."""

    def __init__(self, splits):
        self.splits, self.read = splits, []

    def ledger(self, order_id):
        self.read.append(order_id)
        return self.splits.ledger(order_id)


@pytest.fixture
def morning(shop):  # noqa: F811
    """The business clock at 10:00 Beijing, so nothing in a test straddles midnight."""
    now = datetime.fromtimestamp(wiring.now(), tz=timezone.utc).astimezone(BEIJING)
    ten = now.replace(hour=10, minute=0, second=0, microsecond=0)
    if ten <= now + timedelta(minutes=1):
        ten += timedelta(days=1)
    business_clock().advance(int((ten - now).total_seconds()) + 1)
    return shop


def next_day(shop):  # noqa: F811
    business_clock().advance(DAY)
    shop.tokens.clear()          # session tokens last 12 hours


def check(day, splits=None):
    return check_ledgers(day, ledger_days=LedgerDayRepository(), splits=splits or wiring.splits(),
                         orders=wiring.orders(), alerts=wiring.alerts(), network=wiring.network(), now=wiring.now())


def ledger_alerts():
    from chalicelib.db.records import AlertRecord

    return sorted((a.alert_id, a.order_id, a.dealer_id, a.store_id)
                  for a in AlertRecord.scan() if a.kind == ALERT_KIND)   # test only


def tamper(order_id, n=0):
    """100 fen to the brand straight from the customer: the customer paid more than paid_fen."""
    ledger_record(order_id, f"tampered#{n}", rules.LedgerEntry(order_id, rules.BRAND, rules.CUSTOMER, 100,
                                                               rules.SPLIT), wiring.now()).save()


def today():
    return beijing_date(wiring.now())


def test_a_balanced_day_raises_no_alert_whatever_happened_to_its_orders(morning):
    planned = paid_order(morning, "planned", quantity=3)["order_id"]      # 29700 fen
    on_plan_split("ob", {"order_id": planned})                            # + the RECEIVABLE memo
    refunded = paid_order(morning, "refunded", quantity=2)["order_id"]    # 19800 fen
    status, refund = ask(morning, refunded, {"lines": [{"sku": "LM-MS-WL", "quantity": 1}], "reason": "x"})
    assert status == 201 and settle(refund["out_refund_no"], refunded) == "SUCCESS"
    assert sorted(e.cause for e in wiring.splits().ledger(planned)) == ["PAYMENT", "RECEIVABLE"]
    assert sorted(e.cause for e in wiring.splits().ledger(refunded)) == ["PAYMENT", "REFUND"]

    spy = ReadSpy(wiring.splits())
    counts = check(today(), spy)

    assert counts == {"day": today().isoformat(), "orders": 2, "broken": 0, "new_alerts": 0}
    assert sorted(spy.read) == sorted([planned, refunded])               # each order once, not once per entry
    assert ledger_alerts() == []


def test_a_tampered_ledger_raises_one_alert_naming_its_order_and_a_second_run_nothing_new(morning):
    fine = paid_order(morning, "fine")["order_id"]
    broken = paid_order(morning, "broken")["order_id"]
    on_plan_split("ob", {"order_id": broken})
    tamper(broken)

    assert check(today()) == {"day": today().isoformat(), "orders": 2, "broken": 1, "new_alerts": 1}
    assert ledger_alerts() == [(f"{ALERT_KIND}-{broken}", broken, "dealer-shu", "store-cd-chunxi")]
    alert = wiring.alerts().get(f"{ALERT_KIND}-{broken}")
    assert broken in alert.message and alert.status == "OPEN"
    assert alert.detail["problem"] == \
        "the customer did not pay exactly paid_fen; brand + commissions + dealer + refunded + fee != paid."
    assert (alert.detail["day"], alert.detail["paid_fen"], alert.detail["entries"]) == \
        (today().isoformat(), 19800, 3)
    assert alert.detail["balances"]["customer"] == -19900
    assert fine not in str(ledger_alerts())

    # The same day again (a rerun, or the CLI): the order is still broken, the alert is not new.
    assert check(today()) == {"day": today().isoformat(), "orders": 2, "broken": 1, "new_alerts": 0}
    assert ledger_alerts() == [(f"{ALERT_KIND}-{broken}", broken, "dealer-shu", "store-cd-chunxi")]


def test_an_entry_the_ledger_could_never_hold_is_an_alert_too(morning):
    oid = paid_order(morning, "zero")["order_id"]
    from chalicelib.db.records import LedgerEntryRecord

    record = ledger_record(oid, "tampered#0", rules.LedgerEntry(oid, rules.BRAND, rules.dealer_account("dealer-shu"),
                                                                1, rules.SPLIT), wiring.now())
    record.amount_fen = 0
    record.save()
    assert LedgerEntryRecord.get(oid, "tampered#0").amount_fen == 0

    assert check(today())["broken"] == 1
    assert wiring.alerts().get(f"{ALERT_KIND}-{oid}").detail["problem"] == \
        "a ledger entry moves at least 1 fen (no zero entries)"


def test_only_the_days_orders_are_read_and_a_later_refund_puts_an_order_on_its_day(morning):
    first_day = today()
    early = paid_order(morning, "early")["order_id"]
    next_day(morning)
    second_day = today()
    late = paid_order(morning, "late")["order_id"]
    tamper(late)
    next_day(morning)
    third_day = today()
    status, refund = ask(morning, early, {"amount_fen": 19800, "reason": "changed my mind"})
    assert status == 201 and settle(refund["out_refund_no"], early) == "SUCCESS"

    spy = ReadSpy(wiring.splits())
    assert check(first_day, spy) == {"day": first_day.isoformat(), "orders": 1, "broken": 0, "new_alerts": 0}
    assert spy.read == [early]                                # the tampered order of the next day is not read
    spy.read.clear()
    assert check(second_day, spy) == {"day": second_day.isoformat(), "orders": 1, "broken": 1, "new_alerts": 1}
    assert spy.read == [late]
    spy.read.clear()
    assert check(third_day, spy) == {"day": third_day.isoformat(), "orders": 1, "broken": 0, "new_alerts": 0}
    assert spy.read == [early]                                # refunded in full: still balanced
    assert check(third_day + timedelta(days=1)) == {"day": (third_day + timedelta(days=1)).isoformat(),
                                                    "orders": 0, "broken": 0, "new_alerts": 0}
    assert [a[1] for a in ledger_alerts()] == [late]


def test_the_scheduled_job_checks_the_beijing_day_before_or_the_date_it_is_given(morning):
    import app as app_module

    paid_day = today()
    oid = paid_order(morning, "job")["order_id"]
    tamper(oid)
    next_day(morning)
    event = {"version": "0", "id": "t", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "000000000000", "time": "", "region": "local", "resources": [], "detail": {}}

    assert app_module.check_ledgers(event, None) == {"day": paid_day.isoformat(), "orders": 1, "broken": 1,
                                                     "new_alerts": 1}
    assert app_module.check_ledgers({**event, "detail": {"date": today().isoformat()}}, None) == \
        {"day": today().isoformat(), "orders": 0, "broken": 0, "new_alerts": 0}
    assert app_module.check_ledgers({**event, "detail": {"date": paid_day.isoformat()}}, None)["new_alerts"] == 0
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        app_module.check_ledgers({**event, "detail": {"date": "22/11/2026"}}, None)


def test_the_job_fires_daily_at_0230_beijing_and_the_local_scheduler_reads_it():
    import app as app_module
    from chalice.app import ScheduledEventConfig

    from infra.local.schedules import parse

    config = next(s for s in app_module.app.event_sources
                  if isinstance(s, ScheduledEventConfig) and s.name == "check-ledgers")
    assert config.schedule_expression.to_string() == "cron(30 18 * * ? *)"
    schedule = parse(config.schedule_expression)
    fired = schedule.next_after(datetime(2026, 11, 22, 12, 0, tzinfo=BEIJING))
    assert fired == datetime(2026, 11, 23, 2, 30, tzinfo=BEIJING)
    assert schedule.next_after(fired) == datetime(2026, 11, 24, 2, 30, tzinfo=BEIJING)

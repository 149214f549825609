"""Dealer statements (M10): in-process on moto with the demo data. Receivable memo
entries are written the way the split plan and the settlement write them
(``chalicelib.db.ledger.ledger_record``), for two dealers and three months."""
import csv
import io

import pytest
from chalice.test import Client

from chalicelib.db.ledger import ledger_record
from chalicelib.domain import statements as rules
from chalicelib.domain.settlement import receivable_change
from chalicelib.domain.splits import CLAIM_ACCOUNT, RECEIVABLE, RECEIVABLE_ACCOUNT, LedgerEntry
from chalicelib.services import statements as uc
from chalicelib.services import wiring
from infra.local import demo_data
from tests.openapi import ValidatingClient
from tests.unit.test_scenes import Office

BRAND = demo_data.BRAND["brand_id"]
SHU, CHU = "dealer-shu", "dealer-chu"
SHU_STORE = "store-cd-chunxi"


def previous(month: str) -> str:
    year, number = (int(p) for p in month.split("-"))
    return f"{year - (number == 1):04d}-{(number - 2) % 12 + 1:02d}"


@pytest.fixture
def months():
    """(two months ago, last month, this month) of the business clock, Beijing."""
    this = rules.month_of(wiring.now())
    return previous(previous(this)), previous(this), this


@pytest.fixture
def office(dynamodb):
    from infra.local.seed import seed_demo_data

    seed_demo_data(wiring.now())
    import app as app_module

    with Client(app_module.app, stage_name="test") as client:
        yield Office(ValidatingClient(client))


def book(order_id: str, dealer_id: str, delta_fen: int, at: float, n: int = 0) -> None:
    """The receivable memo moved by ``delta_fen`` for the dealer's order (the settlement's rule)."""
    from chalicelib.db.binding import bind_records

    bind_records()
    for entry in receivable_change(order_id, delta_fen):
        ledger_record(order_id, f"test#{n}", entry, at, dealer_id=dealer_id).save()


def day(month: str, days: float) -> float:
    return rules.month_bounds(month)[0] + days * 86400


@pytest.fixture
def books(office, months):
    """Two months ago: SHU's order A owes 5 500. Last month: B owes 6 000, A's failed return
    leaves the brand owing 3 000 on top of cancelling A; CHU's own order. This month: C."""
    old, last, this = months
    book("SL-A", SHU, 5_500, day(old, 3))
    book("SL-B", SHU, 6_000, day(last, 0))                   # the very first moment of the month
    book("SL-A", SHU, -5_500, day(last, 10), 1)              # refunded: the receivable cancelled
    book("SL-A", SHU, -3_000, day(last, 10.5), 2)            # the split's return failed: the brand owes
    book("SL-B", SHU, 40, day(last, 12), 1)                  # refit
    book("SL-C", SHU, 700, day(this, 0.01))
    book("SL-CHU", CHU, 9_999, day(last, 5))
    return months


def test_the_ledger_writes_the_dealer_on_receivable_entries_only():
    record = ledger_record("SL-A", "x#0", LedgerEntry("SL-A", CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, 5, RECEIVABLE),
                           1_800_000_000.0, dealer_id=SHU)
    assert record.receivable_dealer == SHU
    with pytest.raises(ValueError):
        ledger_record("SL-A", "x#0", LedgerEntry("SL-A", CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, 5, RECEIVABLE), 1.0)


def test_a_dealer_s_statement_shows_receivables_both_ways_and_carries_its_balance(office, books):
    old, last, this = books
    statement = office("brand", BRAND, "GET", f"/v1/admin/statements?dealer_id={SHU}&month={last}")
    assert statement.status_code == 200, statement.json
    body = statement.json
    assert body["statement_id"] == f"{SHU}:{last}" and body["dealer_name"] == "Shu Digital (Chengdu)"
    assert body["opening_balance_fen"] == 5_500
    assert [(l["order_id"], l["owed_by_dealer_fen"], l["owed_by_brand_fen"], l["net_fen"], l["entries"])
            for l in body["lines"]] == [("SL-B", 6_040, 0, 6_040, 2), ("SL-A", 0, 8_500, -8_500, 2)]
    assert (body["owed_by_dealer_fen"], body["owed_by_brand_fen"], body["net_fen"]) == (6_040, 8_500, -2_460)
    assert body["closing_balance_fen"] == 5_500 - 2_460 == 3_040
    assert body["settlements"] == []
    # the failed return's receivable (brand → dealer) is on the dealer's own statement
    own = office("dealer", SHU, "GET", f"/v1/admin/statements?month={last}")
    assert own.status_code == 200 and own.json == body
    # …and the month after opens where this one closed
    after = office("dealer", SHU, "GET", "/v1/admin/statements")
    assert after.json["month"] == this and after.json["opening_balance_fen"] == 3_040
    assert after.json["closing_balance_fen"] == 3_740
    # the other dealer's books are its own
    chu = office("brand", BRAND, "GET", f"/v1/admin/statements/{CHU}:{last}").json
    assert (chu["opening_balance_fen"], chu["closing_balance_fen"], [l["order_id"] for l in chu["lines"]]) == (
        0, 9_999, ["SL-CHU"])
    assert office("brand", BRAND, "GET", f"/v1/admin/statements/{SHU}:{old}").json["opening_balance_fen"] == 0


def test_a_dealer_token_cannot_read_another_dealer_s_statement(office, books):
    _, last, _ = books
    for path in (f"/v1/admin/statements?dealer_id={CHU}&month={last}", f"/v1/admin/statements/{CHU}:{last}",
                 f"/v1/admin/statements/{CHU}:{last}/export"):
        refused = office("dealer", SHU, "GET", path)
        assert refused.status_code == 404 and refused.json["error"]["code"] == "NOT_FOUND", path
    for path in (f"/v1/admin/statements?dealer_id={SHU}", f"/v1/admin/statements/{SHU}:{last}"):
        assert office("store", SHU_STORE, "GET", path).status_code == 403
    # another brand's token reaches none of them
    assert office("brand", "brand-other", "GET", f"/v1/admin/statements/{SHU}:{last}").status_code == 404
    assert office("brand", BRAND, "GET", f"/v1/admin/statements/dealer-nobody:{last}").status_code == 404


@pytest.mark.parametrize("query, status", [
    ("", 400),                              # the brand names the dealer
    ("?dealer_id=dealer-shu&month=2026-13", 400),
    ("?dealer_id=dealer-shu&month=2026-1", 400),
    ("?dealer_id=dealer-shu&month=2999-01", 400),   # after the business clock's month
    ("?dealer_id=bad%20id", 400),
])
def test_a_statement_query_is_checked(office, query, status):
    answer = office("brand", BRAND, "GET", f"/v1/admin/statements{query}")
    assert answer.status_code == status and answer.json["error"]["code"] == "VALIDATION_FAILED"


def test_a_malformed_or_future_statement_id(office):
    assert office("brand", BRAND, "GET", "/v1/admin/statements/dealer-shu-2026-10").status_code == 400
    assert office("brand", BRAND, "GET", "/v1/admin/statements/dealer-shu:2999-01").status_code == 404


def settle(office, statement_id, body, role="brand", tenant=BRAND):
    return office(role, tenant, "POST", f"/v1/admin/statements/{statement_id}/settlements", body)


def test_settlements_are_idempotent_per_reference_and_move_the_balances(office, books):
    old, last, this = books
    body = {"amount_fen": 3_000, "direction": "DEALER_PAID_BRAND", "reference": "ICBC-20261105-0001",
            "note": "October statement"}
    first = settle(office, f"{SHU}:{last}", body)
    assert first.status_code == 201, first.json
    assert first.json == {"statement_id": f"{SHU}:{last}", "dealer_id": SHU, "month": last,
                          "reference": "ICBC-20261105-0001", "amount_fen": 3_000, "direction": "DEALER_PAID_BRAND",
                          "note": "October statement", "recorded_at": first.json["recorded_at"],
                          "recorded_by": f"brand:{BRAND}"}
    again = settle(office, f"{SHU}:{last}", body)
    assert again.status_code == 200 and again.json == first.json
    for changed in ({**body, "amount_fen": 3_001}, {**body, "direction": "BRAND_PAID_DEALER"},
                    {**body, "note": "other"}):
        reused = settle(office, f"{SHU}:{last}", changed)
        assert reused.status_code == 409 and reused.json["error"]["code"] == "SETTLEMENT_REFERENCE_REUSED"
    # the same bank reference against another month is a reuse too
    assert settle(office, f"{SHU}:{old}", body).status_code == 409
    # another dealer may have a transfer with the same reference
    assert settle(office, f"{CHU}:{last}", body).status_code == 201

    statement = office("brand", BRAND, "GET", f"/v1/admin/statements/{SHU}:{last}").json
    assert [s["reference"] for s in statement["settlements"]] == ["ICBC-20261105-0001"]
    assert statement["settled_by_dealer_fen"] == 3_000 and statement["closing_balance_fen"] == 40
    assert office("brand", BRAND, "GET", f"/v1/admin/statements/{SHU}:{this}").json["opening_balance_fen"] == 40
    back = settle(office, f"{SHU}:{this}", {"amount_fen": 100, "direction": "BRAND_PAID_DEALER", "reference": "R2"})
    assert back.status_code == 201 and back.json["note"] is None
    assert office("dealer", SHU, "GET", "/v1/admin/statements").json["closing_balance_fen"] == 40 + 700 + 100


def test_only_the_brand_records_settlements(office, books):
    _, last, _ = books
    body = {"amount_fen": 1, "direction": "DEALER_PAID_BRAND", "reference": "TX"}
    assert settle(office, f"{SHU}:{last}", body, "dealer", SHU).status_code == 403
    assert settle(office, f"{SHU}:{last}", body, "store", SHU_STORE).status_code == 403
    assert settle(office, f"{SHU}:{last}", body, "brand", "brand-other").status_code == 404
    assert settle(office, f"{SHU}:2999-01", body).status_code == 404
    assert settle(office, f"{SHU}:{last}", {**body, "amount_fen": 0}).status_code == 400
    assert settle(office, f"{SHU}:{last}", {**body, "extra": 1}).status_code == 400
    assert settle(office, f"{SHU}:{last}", {"amount_fen": 1, "direction": "DEALER_PAID_BRAND"}).status_code == 400
    assert office("brand", BRAND, "GET", f"/v1/admin/statements/{SHU}:{last}").json["settlements"] == []


def test_a_statement_exports_as_csv(office, books):
    _, last, _ = books
    settle(office, f"{SHU}:{last}", {"amount_fen": 40, "direction": "DEALER_PAID_BRAND", "reference": "T-1"})
    export = office("dealer", SHU, "GET", f"/v1/admin/statements/{SHU}:{last}/export")
    assert export.status_code == 200
    assert export.headers["Content-Type"].startswith("text/csv")
    assert f'filename="statement-{SHU}-{last}.csv"' in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.body.decode())))
    assert [(r["kind"], r["order_id"] or r["reference"]) for r in rows] == [
        ("OPENING", ""), ("ORDER", "SL-B"), ("ORDER", "SL-A"), ("SETTLEMENT", "T-1"), ("CLOSING", "")]
    assert rows[0]["balance_fen"] == "5500" and rows[2]["net_fen"] == "-8500" and rows[3]["net_fen"] == "-40"
    assert rows[-1]["balance_fen"] == "3000"


def test_the_use_case_reads_the_month_and_the_history_separately(dynamodb, months):
    """The repository's bounds: an entry at the next month's first instant is next month's."""
    from chalicelib.auth import BackOfficePrincipal
    from infra.local.seed import seed_demo_data

    seed_demo_data(wiring.now())
    old, last, _ = months
    book("SL-EDGE", SHU, 10, rules.month_bounds(old)[1])          # = the start of last month
    book("SL-IN", SHU, 20, rules.month_bounds(old)[1] - 0.001)    # the end of the month before
    who = BackOfficePrincipal("brand", BRAND)
    kept = uc.read_statement(who, SHU, old, statements=wiring.statements(), network=wiring.network(),
                             now=wiring.now())
    assert [l.order_id for l in kept.lines] == ["SL-IN"] and kept.closing_balance_fen == 20
    following = uc.read_statement(who, SHU, last, statements=wiring.statements(), network=wiring.network(),
                                  now=wiring.now())
    assert [l.order_id for l in following.lines] == ["SL-EDGE"] and following.opening_balance_fen == 20

"""Dealer statements over real HTTP against DynamoDB Local (M10): the ledger's sparse
index ``receivables_by_dealer`` as the local tables build it, tenancy with tokens from
the command line, idempotent settlements, the CSV.

Two dealers are made for this module (the brand's API), so receivables other tests book
for the demo dealers do not change the figures; their receivable memo entries are put
straight into the ledger table, shaped as ``chalicelib.db.ledger.ledger_record`` writes them."""
import csv
import io
import secrets
import subprocess

import pytest

from chalicelib.domain import statements as rules
from infra.local.environment import PROJECT_DIR
from tests.integration.conftest import assert_contract_error, http
from tests.openapi import check_response

pytestmark = pytest.mark.integration
CLAIM, RECEIVABLE = "claim:brand<-dealer", "receivable:dealer->brand"


def token(stack, role, tenant):
    out = subprocess.run([str(PROJECT_DIR / "storelink"), "--data-dir", str(stack.data_dir), "token",
                          "--role", role, "--tenant", tenant], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def call(api, bearer, method, path, body=None):
    reply = http(method, api + path, body, {"Authorization": f"Bearer {bearer}"})
    check_response(method, path, reply.status, reply.body)
    return reply


def previous(month: str) -> str:
    year, number = (int(p) for p in month.split("-"))
    return f"{year - (number == 1):04d}-{(number - 2) % 12 + 1:02d}"


def put_receivable(stack, dealer_id, order_id, n, delta_fen, at):
    """A RECEIVABLE memo entry: the dealer owes the brand ``delta_fen`` more (or less, < 0)."""
    import boto3

    from chalicelib.db.ledger import ledger_day_shard

    client = boto3.client("dynamodb", endpoint_url=stack.urls["dynamodb"], region_name="cn-north-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    debit, credit = (CLAIM, RECEIVABLE) if delta_fen > 0 else (RECEIVABLE, CLAIM)
    client.put_item(TableName=f"{stack.env['STORELINK_TABLE_PREFIX']}ledger_entries", Item={
        "order_id": {"S": order_id}, "entry_id": {"S": f"test#RECEIVABLE#{n}"}, "debit": {"S": debit},
        "credit": {"S": credit}, "amount_fen": {"N": str(abs(delta_fen))}, "cause": {"S": "RECEIVABLE"},
        "at": {"N": repr(at)}, "receivable_dealer": {"S": dealer_id},
        "day_shard": {"S": ledger_day_shard(order_id, at)}})


@pytest.fixture(scope="module")
def books(stack):
    """Two fresh dealers of the demo brand; last month: dealer one's order A owes 5 500, B
    owes 2 000 and B's failed return leaves the brand owing 2 600 on top of cancelling it;
    the month before, 1 000 was owed. Dealer two owes 777 last month."""
    from chalicelib.clock import CLOCK_FILE_NAME, BusinessClock

    api, brand = stack.urls["api"], token(stack, "brand", "brand-lumen")
    dealers = []
    for n in range(2):
        made = call(api, brand, "POST", "/v1/admin/dealers",
                    {"name": f"Statement dealer {n}", "sub_mchid": f"19{secrets.randbelow(10 ** 8):08d}"})
        assert made.status == 201, made.body
        dealers.append(made.json()["dealer_id"])
    last = previous(rules.month_of(BusinessClock(stack.data_dir / CLOCK_FILE_NAME).timestamp()))
    start = rules.month_bounds(last)[0]
    one, two = dealers
    tag = secrets.token_hex(4).upper()
    put_receivable(stack, one, f"SL{tag}OLD", 0, 1_000, rules.month_bounds(previous(last))[0] + 3600)
    put_receivable(stack, one, f"SL{tag}A", 0, 5_500, start + 86400)
    put_receivable(stack, one, f"SL{tag}B", 0, 2_000, start + 2 * 86400)
    put_receivable(stack, one, f"SL{tag}B", 1, -2_000, start + 3 * 86400)   # refunded: cancelled
    put_receivable(stack, one, f"SL{tag}B", 2, -2_600, start + 3 * 86400 + 60)   # the return failed
    put_receivable(stack, two, f"SL{tag}TWO", 0, 777, start + 86400)
    return {"api": api, "brand": brand, "one": one, "two": two, "month": last, "tag": tag,
            "one_token": token(stack, "dealer", one), "shu_token": token(stack, "dealer", "dealer-shu"),
            "store_token": token(stack, "store", "store-cd-chunxi")}


def test_a_statement_over_http_shows_both_ways_and_its_balances(books):
    api, one, month, tag = books["api"], books["one"], books["month"], books["tag"]
    reply = call(api, books["brand"], "GET", f"/v1/admin/statements?dealer_id={one}&month={month}")
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["opening_balance_fen"] == 1_000
    assert [(l["order_id"], l["owed_by_dealer_fen"], l["owed_by_brand_fen"]) for l in body["lines"]] == [
        (f"SL{tag}A", 5_500, 0), (f"SL{tag}B", 2_000, 4_600)]
    assert body["closing_balance_fen"] == 1_000 + 5_500 - 2_600
    own = call(api, books["one_token"], "GET", f"/v1/admin/statements/{one}:{month}")
    assert own.status == 200 and own.json() == body
    following = call(api, books["one_token"], "GET", "/v1/admin/statements")
    assert following.json()["opening_balance_fen"] == 3_900


def test_a_dealer_token_cannot_read_another_dealer_s_statement(books):
    api, month = books["api"], books["month"]
    for path in (f"/v1/admin/statements?dealer_id={books['one']}&month={month}",
                 f"/v1/admin/statements/{books['one']}:{month}", f"/v1/admin/statements/{books['one']}:{month}/export",
                 f"/v1/admin/statements/{books['two']}:{month}"):
        assert_contract_error(call(api, books["shu_token"], "GET", path), 404, "NOT_FOUND")
    assert_contract_error(call(api, books["store_token"], "GET", f"/v1/admin/statements/{books['one']}:{month}"),
                          403, "FORBIDDEN")
    two = call(api, books["brand"], "GET", f"/v1/admin/statements/{books['two']}:{month}").json()
    assert [l["owed_by_dealer_fen"] for l in two["lines"]] == [777]


def test_settlements_are_idempotent_over_http(books):
    api, one, month = books["api"], books["one"], books["month"]
    path = f"/v1/admin/statements/{one}:{month}/settlements"
    body = {"amount_fen": 3_900, "direction": "DEALER_PAID_BRAND", "reference": f"BOC-{books['tag']}"}
    assert_contract_error(call(api, books["one_token"], "POST", path, body), 403, "FORBIDDEN")
    first = call(api, books["brand"], "POST", path, body)
    assert first.status == 201, first.body
    again = call(api, books["brand"], "POST", path, body)
    assert again.status == 200 and again.json() == first.json()
    assert_contract_error(call(api, books["brand"], "POST", path, {**body, "amount_fen": 3_901}),
                          409, "SETTLEMENT_REFERENCE_REUSED")
    statement = call(api, books["one_token"], "GET", f"/v1/admin/statements/{one}:{month}").json()
    assert [s["reference"] for s in statement["settlements"]] == [body["reference"]]
    assert statement["closing_balance_fen"] == 0

    export = call(api, books["one_token"], "GET", f"/v1/admin/statements/{one}:{month}/export")
    assert export.status == 200 and export.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.body.decode())))
    assert [r["kind"] for r in rows] == ["OPENING", "ORDER", "ORDER", "SETTLEMENT", "CLOSING"]
    assert rows[0]["balance_fen"] == "1000" and rows[-1]["balance_fen"] == "0"

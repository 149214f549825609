"""Planning a paid order's splits: the plan, its ledger, the commissions and the
promoter's own account (moto, in-process, demo data)."""
import json

import pytest

from chalicelib import auth
from chalicelib.domain import splits as rules
from chalicelib.services import wiring
from chalicelib.services.splits import earn_due_commissions, on_order_completed, on_plan_split
from tests.unit.test_fulfilment import paid_order
from tests.unit.test_orders import shop  # noqa: F401 - the fixture
from tests.unit.test_promoters import customer_id, post, promoter
from tests.unit.test_scans import make_scene, scan

DAY = 86400


def brand_settings(shop, body):  # noqa: F811
    token = auth.issue_backoffice_token("brand", "brand-lumen", wiring.now(), wiring.token_signing_key())
    answer = shop.client.http.put("/v1/admin/brand/commission-settings", body=json.dumps(body), headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.body
    return json.loads(answer.body)


def ledger_entries(order_id):
    return [rules.LedgerEntry(order_id, e.debit, e.credit, int(e.amount_fen), e.cause)
            for e in wiring.splits().ledger(order_id)]


@pytest.fixture
def stores(shop):  # noqa: F811
    make_scene("s.chunxi", "store-cd-chunxi")
    return shop


def test_an_order_without_promoter_splits_30_percent_to_the_brand_and_the_rest_is_receivable(stores):
    order = paid_order(stores, "plain")                       # 2 x LM-MS-WL: 19800 fen, cost 2 x 7500
    oid = order["order_id"]
    assert [e.cause for e in ledger_entries(oid)] == ["PAYMENT"]      # written with the payment itself
    on_plan_split("ob", {"order_id": oid})
    plan = wiring.splits().plan(oid).plan
    # fee estimate 0.6 % = 119; cap = min(30 % of 19800, 19800 - 119) = 5940
    assert (plan["cap_fen"], plan["brand_split_fen"], plan["receivable_fen"], plan["commission_fen"]) == \
        (5940, 5940, 9060, 0)
    # The ledger holds what happened: the payment, and the receivable the plan decided;
    # the split and the fee are booked when the provider confirms them (M9).
    breakdown = rules.check_invariant(ledger_entries(oid), 19800)
    assert (breakdown["brand"], breakdown["fee"], breakdown["receivable"], breakdown["dealer"]) == (0, 0, 9060, 19800)
    on_plan_split("ob", {"order_id": oid})                    # redelivered: nothing twice
    assert [e.cause for e in ledger_entries(oid)] == ["PAYMENT", "RECEIVABLE"]


def test_a_promoters_commission_is_planned_pending_and_shows_in_their_own_account_only(stores):
    brand_settings(stores, {"depth": 1, "default_rates_bps": [500]})
    share = promoter(stores, "amy")
    scan(stores, {"scene": share}, who="alice")               # alice arrives through amy's code
    order = paid_order(stores, "through-amy")
    oid = order["order_id"]
    on_plan_split("ob", {"order_id": oid})
    plan = wiring.splits().plan(oid).plan
    assert (plan["commission_fen"], plan["brand_split_fen"], plan["receivable_fen"]) == (990, 4950, 10050)
    rules.check_invariant(ledger_entries(oid), 19800)

    account = stores.get("/v1/me/promoter", who="amy").json
    assert account["downline"] == {"level_1": 1, "level_2": 0, "level_3": 0}
    assert account["amounts"] == {"pending_fen": 990, "earned_fen": 0, "paid_fen": 0, "clawback_owed_fen": 0}
    assert [(r["order_id"], r["level"], r["amount_fen"], r["status"]) for r in account["recent"]] == [
        (oid, 1, 990, "PENDING")]
    # alice is no promoter: she has no account, and nothing of amy's reaches her.
    mine = stores.get("/v1/me/promoter", who="alice")
    assert mine.status_code == 404 and mine.json["error"]["code"] == "NOT_A_PROMOTER"
    # ben, another promoter, sees only his own (empty) account.
    promoter(stores, "ben")
    ben = stores.get("/v1/me/promoter", who="ben").json
    assert ben["amounts"]["pending_fen"] == 0 and ben["recent"] == [] and ben["downline"]["level_1"] == 0


def test_two_levels_pay_the_direct_promoter_and_their_inviter(stores):
    brand_settings(stores, {"depth": 2, "default_rates_bps": [500, 200]})
    a_share = promoter(stores, "ann")
    scan(stores, {"scene": a_share}, who="bea")
    b_share = post(stores, "/v1/promoters", "bea")[1]["scene"]
    scan(stores, {"scene": b_share}, who="alice")
    oid = paid_order(stores, "two-levels")["order_id"]
    on_plan_split("ob", {"order_id": oid})
    ann, bea = customer_id(stores, "ann"), customer_id(stores, "bea")
    by_promoter = {c.promoter_id: (int(c.level), int(c.amount_fen))
                   for c in wiring.splits().commissions_of_order(oid)}
    assert by_promoter == {bea: (1, 990), ann: (2, 396)}
    assert stores.get("/v1/me/promoter", who="ann").json["downline"] == {"level_1": 1, "level_2": 1, "level_3": 0}
    rules.check_invariant(ledger_entries(oid), 19800)


def test_commissions_are_earned_on_day_25_or_when_the_after_sale_window_closes(stores, monkeypatch):
    brand_settings(stores, {"depth": 1, "default_rates_bps": [500], "after_sale_days": 7})
    scan(stores, {"scene": promoter(stores, "amy")}, who="alice")
    first = paid_order(stores, "earn-25")["order_id"]
    second = paid_order(stores, "earn-window")["order_id"]
    for oid in (first, second):
        on_plan_split("ob", {"order_id": oid})
    paid_at = wiring.orders().get(first).paid_at
    # The second order completes on day 3: its window closes on day 10.
    from chalicelib.db.records import OrderRecord

    OrderRecord(second).update(actions=[OrderRecord.status.set("COMPLETED"),
                                        OrderRecord.completed_at.set(paid_at + 3 * DAY)])
    on_order_completed("ob", {"order_id": second})
    assert earn_due_commissions(splits=wiring.splits(), now=paid_at + 10 * DAY - 1) == {"earned": 0, "skipped": 0, "written_off": 0}
    assert earn_due_commissions(splits=wiring.splits(), now=paid_at + 10 * DAY) == {"earned": 1, "skipped": 0, "written_off": 0}
    assert earn_due_commissions(splits=wiring.splits(), now=paid_at + 25 * DAY) == {"earned": 1, "skipped": 0, "written_off": 0}
    assert earn_due_commissions(splits=wiring.splits(), now=paid_at + 40 * DAY) == {
        "earned": 0, "skipped": 0, "written_off": 0}
    amounts = stores.get("/v1/me/promoter", who="amy").json["amounts"]
    assert amounts == {"pending_fen": 0, "earned_fen": 1980, "paid_fen": 0, "clawback_owed_fen": 0}


def test_a_new_price_or_cost_must_leave_room_for_the_commissions(shop):  # noqa: F811
    import json

    from chalicelib import auth
    from chalicelib.services import wiring

    token = auth.issue_backoffice_token("brand", "brand-lumen", wiring.now(), wiring.token_signing_key())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    put = shop.client.http.put("/v1/admin/brand/commission-settings", headers=headers,
                               body=json.dumps({"depth": 1, "default_rates_bps": [1000]}))
    assert put.status_code == 200, put.body
    # LM-MS-WL: price 9900, cost 7500; 10 % commission = 990: a cost of 8911 leaves 1 fen too little.
    too_dear = shop.client.http.patch("/v1/admin/products/LM-MS-WL", headers=headers,
                                      body=json.dumps({"cost_fen": 8911}))
    assert too_dear.status_code == 422 and json.loads(too_dear.body)["error"]["details"]["sku"] == "LM-MS-WL"
    fits = shop.client.http.patch("/v1/admin/products/LM-MS-WL", headers=headers, body=json.dumps({"cost_fen": 8910}))
    assert fits.status_code == 200 and json.loads(fits.body)["cost_fen"] == 8910
    cheap = shop.client.http.post("/v1/admin/products", headers=headers, body=json.dumps(
        {"sku": "LM-CABLE", "name": "Cable", "category": "accessory", "price_fen": 1000, "cost_fen": 901}))
    assert cheap.status_code == 422

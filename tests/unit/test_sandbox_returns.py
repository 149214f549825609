"""The sandbox's profit-sharing returns (分账回退, ``infra/local/sandbox/returns.py``) without a
server: the bodies WeChat accepts, what is left to return, repeat detection, and the
rules over a split order held in a temporary SQLite state (the 50-returns limit and the
180-day window, too slow to reach through the stack)."""
import json

import pytest

from infra.local.sandbox.faults import Faults, validate
from infra.local.sandbox.http import Request
from infra.local.sandbox.merchants import Merchants
from infra.local.sandbox.profitsharing import ProfitSharing
from infra.local.sandbox.requests_log import RequestLog
from infra.local.sandbox.returns import (MAX_RETURNS_PER_ORDER, RETURN_WINDOW_S, ProfitSharingReturns,
                                         new_return_id, outcome, return_json, returnable, same_return,
                                         validate_return)
from infra.local.sandbox.state import SandboxState
from infra.local.sandbox.v3 import V3Error

SUB, BRAND, OTHER = "1900000109", "1900000200", "1900000300"
ORDER_ID = "3008000001202601010000000001"
NOW = 1_767_225_600.0


def return_body(**changes) -> dict:
    body = {"sub_mchid": SUB, "out_order_no": "SO_1", "out_return_no": "RT_1", "return_mchid": BRAND,
            "amount": 100, "description": "用户退款"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


# -- bodies ------------------------------------------------------------------------------------------

def test_a_valid_return_body_is_read_as_sent():
    assert validate_return(return_body()) == {
        "sub_mchid": SUB, "order_id": None, "out_order_no": "SO_1", "out_return_no": "RT_1",
        "return_mchid": BRAND, "amount": 100, "description": "用户退款"}
    by_id = validate_return(return_body(out_order_no=None, order_id=ORDER_ID))
    assert (by_id["order_id"], by_id["out_order_no"]) == (ORDER_ID, None)
    assert validate_return(return_body(out_return_no="R-1|a*b@c_d"))["out_return_no"] == "R-1|a*b@c_d"


@pytest.mark.parametrize("changes, field", [
    ({"sub_mchid": None}, "sub_mchid"),
    ({"sub_mchid": "abc"}, "sub_mchid"),
    ({"out_order_no": None}, "out_order_no"),                  # neither order_id nor out_order_no
    ({"out_order_no": "SO 1"}, "out_order_no"),
    ({"out_order_no": 12}, "out_order_no"),
    ({"order_id": "not-digits"}, "order_id"),
    ({"out_return_no": None}, "out_return_no"),
    ({"out_return_no": ""}, "out_return_no"),
    ({"out_return_no": "R" * 65}, "out_return_no"),
    ({"out_return_no": "退款1"}, "out_return_no"),
    ({"return_mchid": None}, "return_mchid"),
    ({"return_mchid": "o_promoter"}, "return_mchid"),
    ({"amount": 0}, "amount"),
    ({"amount": -5}, "amount"),
    ({"amount": 1.5}, "amount"),
    ({"amount": True}, "amount"),
    ({"amount": "100"}, "amount"),
    ({"description": None}, "description"),
    ({"description": ""}, "description"),
    ({"description": "退" * 81}, "description"),
])
def test_invalid_return_bodies_are_param_errors_naming_the_field(changes, field):
    with pytest.raises(V3Error) as refused:
        validate_return(return_body(**changes))
    assert (refused.value.status, refused.value.code) == (400, "PARAM_ERROR")
    assert refused.value.detail["field"] == field


# -- money -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("received, returned, left", [(3000, 0, 3000), (3000, 1000, 2000), (3000, 3000, 0),
                                                      (100, 200, 0)])
def test_what_is_left_to_return_is_what_was_received_less_what_went_back(received, returned, left):
    assert returnable(received, returned) == left


def test_negative_amounts_are_a_bug():
    with pytest.raises(ValueError):
        returnable(-1, 0)


@pytest.mark.parametrize("balance, amount, expected", [
    (1000, 1000, ("SUCCESS", None)), (1001, 1000, ("SUCCESS", None)), (999, 1000, ("FAILED", "BALANCE_NOT_ENOUGH")),
    (0, 1, ("FAILED", "BALANCE_NOT_ENOUGH"))])
def test_the_receivers_balance_decides_the_result(balance, amount, expected):
    assert outcome(balance, amount) == expected


def test_wechat_like_return_ids():
    assert len(new_return_id(NOW)) == 28 and new_return_id(NOW).isdigit()


def test_a_repeat_is_the_same_return_whichever_way_it_names_the_split_order():
    order = {"out_order_no": "SO_1", "order_id": ORDER_ID}
    stored = {"sub_mchid": SUB, "return_mchid": BRAND, "amount_fen": 100, "description": "用户退款"}
    assert same_return(stored, validate_return(return_body()), order)
    assert same_return(stored, validate_return(return_body(out_order_no=None, order_id=ORDER_ID)), order)
    for changes in ({"amount": 101}, {"return_mchid": OTHER}, {"description": "别的"}, {"sub_mchid": "1900000110"},
                    {"out_order_no": "SO_2"}, {"out_order_no": None, "order_id": "3008"}):
        assert not same_return(stored, validate_return(return_body(**changes)), order), changes


def test_the_answer_has_wechats_fields_and_a_reason_only_when_failed():
    row = {"sub_mchid": SUB, "order_id": ORDER_ID, "out_order_no": "SO_1", "out_return_no": "RT_1",
           "return_id": "3008", "return_mchid": BRAND, "amount_fen": 100, "description": "d", "result": "SUCCESS",
           "fail_reason": None, "created_at": NOW, "finished_at": NOW}
    answer = return_json(row)
    assert set(answer) == {"sub_mchid", "order_id", "out_order_no", "out_return_no", "return_id", "return_mchid",
                           "amount", "description", "result", "create_time", "finish_time"}
    assert answer["create_time"].endswith("+08:00") and answer["amount"] == 100
    assert return_json({**row, "result": "FAILED", "fail_reason": "BALANCE_NOT_ENOUGH"})["fail_reason"] == \
        "BALANCE_NOT_ENOUGH"


def test_faults_may_name_the_return_apis():
    assert validate({"kind": "profitsharing_error", "api": "profitsharing_return"})[1]["api"] == \
        "profitsharing_return"
    assert validate({"kind": "profitsharing_slow", "delay_s": 1, "api": "profitsharing_return_query"})[1]["api"] == \
        "profitsharing_return_query"


# -- over a split order held in SQLite ---------------------------------------------------------------

class FixedClock:
    def __init__(self, now=NOW):
        self.now = now

    def timestamp(self):
        return self.now


class World:
    def __init__(self, tmp_path):
        self.state = SandboxState(tmp_path / "sandbox.db")
        self.clock = FixedClock()
        self.merchants = Merchants(self.state, self.clock, BRAND)
        self.requests = RequestLog(self.state)
        faults = Faults(self.state, self.clock)
        sharing = ProfitSharing(self.state, self.clock, None, self.merchants, self.requests, faults, keys=None,
                                sp_appid="wx5f0c0ffee5a1d001")
        self.returns = ProfitSharingReturns(self.state, self.clock, sharing, self.merchants, self.requests)

    def split_order(self, out_order_no="SO_1", state="FINISHED", receivers=((BRAND, 3000, "SUCCESS"),)):
        with self.state.transaction() as db:
            db.execute("INSERT INTO ps_orders (out_order_no, order_id, kind, sub_mchid, transaction_id, out_trade_no,"
                       " request, unfreeze_unsplit, state, created_at, finish_at, finished_at)"
                       " VALUES (?, ?, 'SPLIT', ?, 'T1', 'O1', '{}', 0, ?, ?, ?, ?)",
                       (out_order_no, ORDER_ID if out_order_no == "SO_1" else ORDER_ID[:-1] + "2", SUB, state,
                        self.clock.now, self.clock.now + 20, self.clock.now + 20 if state == "FINISHED" else None))
            for position, (account, amount, result) in enumerate(receivers):
                db.execute("INSERT INTO ps_order_receivers (out_order_no, position, type, account, amount_fen,"
                           " description, detail_id, result, created_at) VALUES (?, ?, ?, ?, ?, 'd', ?, ?, ?)",
                           (out_order_no, position, "MERCHANT_ID" if account.isdigit() else "PERSONAL_OPENID",
                            account, amount, f"D{out_order_no}{position}", result, self.clock.now))

    def ask(self, **changes):
        body = return_body(**changes)
        reply = self.returns.create(Request("POST", "/v3/profitsharing/return-orders", {}, {},
                                            json.dumps(body).encode()))
        return json.loads(reply.body)

    def refused(self, **changes) -> V3Error:
        with pytest.raises(V3Error) as refused:
            self.ask(**changes)
        return refused.value

    def balance(self, mchid):
        return self.merchants.settings(mchid)["balance_fen"]


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_a_return_moves_the_money_back_and_a_repeat_answers_the_same(world):
    world.split_order()
    answer = world.ask(out_return_no="RT_1", amount=1000)
    assert (answer["result"], answer["amount"], answer["order_id"]) == ("SUCCESS", 1000, ORDER_ID)
    assert (world.balance(BRAND), world.balance(SUB)) == (10_000_000 - 1000, 1000)
    assert world.ask(out_return_no="RT_1", amount=1000) == answer
    assert world.ask(out_return_no="RT_1", amount=1000, out_order_no=None, order_id=ORDER_ID) == answer
    assert world.requests.counts("profitsharing_return", "RT_1") == {"received": 3, "accepted": 1}
    assert (world.balance(BRAND), world.balance(SUB)) == (10_000_000 - 1000, 1000)
    refused = world.refused(out_return_no="RT_1", amount=999)
    assert (refused.code, refused.detail["field"]) == ("PARAM_ERROR", "out_return_no")


def test_what_is_left_caps_each_return_and_a_failed_one_takes_nothing_back(world):
    world.split_order()
    world.merchants.update(BRAND, balance_fen=500)
    failed = world.ask(out_return_no="RT_F", amount=3000)
    assert (failed["result"], failed["fail_reason"]) == ("FAILED", "BALANCE_NOT_ENOUGH")
    assert (world.balance(BRAND), world.balance(SUB)) == (500, 0)
    world.merchants.update(BRAND, balance_fen=10_000)
    assert world.ask(out_return_no="RT_2", amount=2000)["result"] == "SUCCESS"
    refused = world.refused(out_return_no="RT_3", amount=1001)
    assert (refused.status, refused.code) == (400, "INVALID_REQUEST") and "回退" in refused.message
    assert world.requests.counts("profitsharing_return", "RT_3") == {"received": 1, "accepted": 0}
    assert world.ask(out_return_no="RT_4", amount=1000)["result"] == "SUCCESS"
    assert world.refused(out_return_no="RT_5", amount=1).code == "INVALID_REQUEST"


@pytest.mark.parametrize("receivers, return_mchid", [
    (((BRAND, 3000, "CLOSED"),), BRAND),          # the receiver got nothing
    (((BRAND, 3000, "SUCCESS"),), OTHER),         # not a receiver of this order
    ((("o_promoter", 3000, "SUCCESS"),), BRAND),  # only MERCHANT_ID receivers
])
def test_only_a_merchant_receiver_that_got_money_in_that_order_returns(world, receivers, return_mchid):
    world.split_order(receivers=receivers)
    refused = world.refused(return_mchid=return_mchid)
    assert (refused.status, refused.code) == (400, "INVALID_REQUEST")


def test_the_split_order_must_exist_be_the_sub_merchants_and_be_finished(world):
    assert world.refused().code == "RESOURCE_NOT_EXISTS"
    world.split_order(state="PROCESSING")
    world.clock.now -= 100                           # not due yet: stays PROCESSING
    refused = world.refused()
    assert (refused.code, refused.message) == ("INVALID_REQUEST", "分账单处理中，请分账完成后再回退")
    assert world.refused(sub_mchid="1900000110").code == "RESOURCE_NOT_EXISTS"
    assert world.refused(order_id="3008999").code == "RESOURCE_NOT_EXISTS"   # both numbers, other orders


def test_a_receiver_that_did_not_agree_to_returns_is_no_auth(world):
    world.split_order()
    world.merchants.update(BRAND, return_opt_in=False)
    refused = world.refused()
    assert (refused.status, refused.code) == (403, "NO_AUTH") and "未开通分账回退" in refused.message


def test_returns_end_180_days_after_the_split(world):
    world.split_order()
    world.clock.now += RETURN_WINDOW_S
    assert world.ask(out_return_no="RT_IN", amount=1)["result"] == "SUCCESS"
    world.clock.now += 1
    refused = world.refused(out_return_no="RT_OUT", amount=1)
    assert refused.code == "INVALID_REQUEST" and "180" in refused.message


def test_a_split_order_takes_at_most_50_returns_failed_ones_included(world):
    world.split_order()
    world.merchants.update(BRAND, balance_fen=10)
    for n in range(MAX_RETURNS_PER_ORDER):
        assert world.ask(out_return_no=f"RT_{n}", amount=20 if n == 0 else 1)["result"] in ("SUCCESS", "FAILED")
    refused = world.refused(out_return_no="RT_51", amount=1)
    assert refused.code == "INVALID_REQUEST" and "50" in refused.message


def test_the_query_needs_the_sub_merchant_and_the_split_order(world):
    world.split_order()
    created = world.ask()

    def query(**params):
        request = Request("GET", "/v3/profitsharing/return-orders/RT_1", params, {}, b"", {"out_return_no": "RT_1"})
        return world.returns.query(request)

    assert json.loads(query(sub_mchid=SUB, out_order_no="SO_1").body) == created
    for params, code in (({"out_order_no": "SO_1"}, "PARAM_ERROR"), ({"sub_mchid": SUB}, "PARAM_ERROR"),
                         ({"sub_mchid": "1900000110", "out_order_no": "SO_1"}, "RESOURCE_NOT_EXISTS"),
                         ({"sub_mchid": SUB, "out_order_no": "SO_2"}, "RESOURCE_NOT_EXISTS")):
        with pytest.raises(V3Error) as refused:
            query(**params)
        assert refused.value.code == code, params

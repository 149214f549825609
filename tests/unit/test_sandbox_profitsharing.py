"""The sandbox's profit-sharing rules that need no server: the caps in integer fen, the
bodies WeChat accepts, repeat detection, fault matching, the receivers limit."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.local.sandbox.faults import FaultError, Faults, validate
from infra.local.sandbox.http import Request
from infra.local.sandbox.profitsharing import (MAX_RECEIVERS_PER_MERCHANT, ProfitSharing, new_detail_id,
                                               new_order_id, ratio_cap, same_receivers, unsplit_amount,
                                               validate_receiver, validate_split, validate_unfreeze)
from infra.local.sandbox.requests_log import RequestLog
from infra.local.sandbox.state import SandboxState
from infra.local.sandbox.v3 import V3Error

APPID = "wx5f0c0ffee5a1d001"
SUB = "1900000109"


def split_body(**changes) -> dict:
    body = {"sub_mchid": SUB, "appid": APPID, "transaction_id": "4200000000202601010000000001",
            "out_order_no": "SO_1", "unfreeze_unsplit": False,
            "receivers": [{"type": "MERCHANT_ID", "account": "1900000200", "amount": 300, "description": "品牌方"}]}
    body.update(changes)
    return body


# -- money -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("total, refunded, ratio, cap", [
    (10000, 0, 3000, 3000), (9999, 0, 3000, 2999),      # 2999.7 -> floor
    (10000, 5000, 3000, 1500), (10000, 10000, 3000, 0),
    (1, 0, 3000, 0), (10000, 0, 10000, 10000), (10000, 0, 0, 0),
])
def test_the_ratio_cap_is_floored_and_shrinks_with_refunds(total, refunded, ratio, cap):
    assert ratio_cap(total, refunded, ratio) == cap


def test_the_unsplit_amount_is_total_less_fee_refunds_and_splits_never_negative():
    assert unsplit_amount(10000, 60, 0, 0) == 9940
    assert unsplit_amount(10000, 60, 4970, 3000) == 1970
    assert unsplit_amount(10000, 60, 9940, 3000) == 0


@given(st.integers(1, 10 ** 9), st.integers(0, 10 ** 4))
def test_the_cap_never_exceeds_the_ratio_of_the_total(total, ratio):
    cap = ratio_cap(total, 0, ratio)
    assert cap * 10000 <= total * ratio < (cap + 1) * 10000


def test_a_ratio_outside_0_to_10000_is_a_bug():
    with pytest.raises(ValueError):
        ratio_cap(100, 0, 10001)


def test_wechat_like_numbers():
    assert len(new_order_id(1_767_225_600)) == 28 and new_order_id(1_767_225_600).isdigit()
    assert len(new_detail_id(1_767_225_600)) == 23


# -- bodies ------------------------------------------------------------------------------------------

def test_a_valid_split_body_is_read_as_sent():
    found = validate_split(split_body(), APPID)
    assert found["receivers"] == [{"type": "MERCHANT_ID", "account": "1900000200", "amount": 300,
                                   "description": "品牌方", "name": None}]
    assert (found["sub_mchid"], found["out_order_no"], found["unfreeze_unsplit"]) == (SUB, "SO_1", False)


@pytest.mark.parametrize("changes, field", [
    ({"sub_mchid": None}, "sub_mchid"),
    ({"out_order_no": "has space"}, "out_order_no"),
    ({"out_order_no": "x" * 65}, "out_order_no"),
    ({"unfreeze_unsplit": "false"}, "unfreeze_unsplit"),
    ({"receivers": []}, "receivers"),
    ({"receivers": [{"type": "MERCHANT_ID", "account": "1900000200", "amount": 1, "description": "d"}] * 51},
     "receivers"),
    ({"receivers": [{"type": "UNIONID", "account": "u_x", "amount": 1, "description": "d"}]}, "receivers[0].type"),
    ({"receivers": [{"type": "MERCHANT_ID", "account": "1900000200", "amount": 0, "description": "d"}]},
     "receivers[0].amount"),
    ({"receivers": [{"type": "MERCHANT_ID", "account": "1900000200", "amount": 1.5, "description": "d"}]},
     "receivers[0].amount"),
    ({"receivers": [{"type": "MERCHANT_ID", "account": "1900000200", "amount": 1, "description": "d" * 81}]},
     "receivers[0].description"),
    ({"receivers": [{"type": "MERCHANT_ID", "account": "1900000200", "amount": 1, "description": "a"},
                    {"type": "MERCHANT_ID", "account": "1900000200", "amount": 2, "description": "b"}]},
     "receivers[1]"),
    ({"appid": "wx0000000000000000"}, "appid"),
    ({"appid": None, "receivers": [{"type": "PERSONAL_OPENID", "account": "o_a", "amount": 1, "description": "d"}]},
     "appid"),
    ({"receivers": [{"type": "PERSONAL_SUB_OPENID", "account": "o_a", "amount": 1, "description": "d"}]},
     "sub_appid"),
])
def test_invalid_split_bodies_are_param_errors_naming_the_field(changes, field):
    with pytest.raises(V3Error) as refused:
        validate_split(split_body(**changes), APPID)
    assert refused.value.code == "PARAM_ERROR" and refused.value.detail["field"] == field


def test_receiver_and_unfreeze_bodies():
    add = {"sub_mchid": SUB, "appid": APPID, "type": "PERSONAL_OPENID", "account": "o_a", "relation_type": "USER"}
    assert validate_receiver(add, APPID, adding=True)["name"] is None
    for changes in ({"type": "MERCHANT_ID", "account": "1900000200"},          # a merchant needs its name
                    {"relation_type": "CUSTOM"}, {"relation_type": "FRIEND"},
                    {"custom_relation": "朋友"},                                # only with CUSTOM
                    {"relation_type": "CUSTOM", "custom_relation": "十一个字的自定义关系名称"}):
        with pytest.raises(V3Error):
            validate_receiver({**add, **changes}, APPID, adding=True)
    assert validate_receiver({**add, "relation_type": "CUSTOM", "custom_relation": "代理商"}, APPID, True)
    assert validate_receiver({k: add[k] for k in ("sub_mchid", "appid", "type", "account")}, APPID, adding=False)
    with pytest.raises(V3Error):
        validate_unfreeze({"sub_mchid": SUB, "transaction_id": "42", "out_order_no": "UF_1"})   # description


def test_a_repeat_is_the_same_split_whatever_the_order_of_its_receivers():
    a = {"type": "MERCHANT_ID", "account": "1900000200", "amount": 300, "description": "x"}
    b = {"type": "PERSONAL_OPENID", "account": "o_a", "amount": 10, "description": "y"}
    assert same_receivers([a, b], [{**b, "name": "cipher"}, a])
    assert not same_receivers([a, b], [a, {**b, "amount": 11}])
    assert not same_receivers([a], [a, b])


# -- faults ------------------------------------------------------------------------------------------

def test_profit_sharing_faults_are_validated_with_defaults():
    assert validate({"kind": "split_receiver_fails"}) == ("split_receiver_fails", {"fail_reason": "NO_RELATION"},
                                                          False)
    assert validate({"kind": "profitsharing_error", "api": "profitsharing_order", "once": True}) == (
        "profitsharing_error", {"code": "SYSTEM_ERROR", "carried_out": False, "api": "profitsharing_order"}, True)
    for bad in ({"kind": "split_receiver_fails", "fail_reason": "UNLUCKY"},
                {"kind": "profitsharing_error", "code": "PARAM_ERROR"},
                {"kind": "profitsharing_slow", "delay_s": 0},
                {"kind": "profitsharing_slow", "delay_s": 5, "api": "refund"}):
        with pytest.raises(FaultError):
            validate(bad)


class FixedClock:
    def __init__(self, now=1_767_225_600.0):
        self.now = now

    def timestamp(self):
        return self.now


@pytest.fixture
def state(tmp_path):
    return SandboxState(tmp_path / "sandbox.db")


def test_a_matching_fault_is_taken_once_and_others_are_left(state):
    faults = Faults(state, FixedClock())
    faults.add("split_receiver_fails", {"fail_reason": "NO_RELATION", "account": "1900000200"}, once=True)
    faults.add("split_receiver_fails", {"fail_reason": "RECEIVER_HIGH_RISK"}, once=False)
    def for_brand(params):
        return params.get("account") in (None, "1900000200")

    assert faults.take_matching("split_receiver_fails", lambda p: p.get("account") == "o_x") is None
    assert faults.take_matching("split_receiver_fails", for_brand)["fail_reason"] == "NO_RELATION"
    assert faults.take_matching("split_receiver_fails", for_brand)["fail_reason"] == "RECEIVER_HIGH_RISK"
    assert faults.take_matching("split_receiver_fails", for_brand)["fail_reason"] == "RECEIVER_HIGH_RISK"


# -- the receivers limit -----------------------------------------------------------------------------

def add_request(account: str) -> Request:
    body = {"sub_mchid": SUB, "appid": APPID, "type": "PERSONAL_OPENID", "account": account,
            "relation_type": "USER"}
    return Request("POST", "/v3/profitsharing/receivers/add", {}, {}, json.dumps(body).encode())


def test_a_sub_merchant_holds_at_most_20000_receivers_but_re_adding_one_still_answers(state):
    clock = FixedClock()
    sharing = ProfitSharing(state, clock, None, None, RequestLog(state), Faults(state, clock), keys=None,
                            sp_appid=APPID)
    with state.transaction() as db:
        db.executemany("INSERT INTO ps_receivers (sub_mchid, type, account, relation_type, added_at)"
                       " VALUES (?, 'PERSONAL_OPENID', ?, 'USER', 0)",
                       [(SUB, f"o_{i}") for i in range(MAX_RECEIVERS_PER_MERCHANT - 1)])
    assert sharing.add_receiver(add_request("o_last")).status == 200        # the 20000th
    assert sharing.add_receiver(add_request("o_7")).status == 200           # already there: idempotent
    with pytest.raises(V3Error) as refused:
        sharing.add_receiver(add_request("o_one_too_many"))
    assert refused.value.code == "INVALID_REQUEST" and "20000" in refused.value.message
    other = add_request("o_elsewhere")
    other.body = other.body.replace(SUB.encode(), b"1900000110")
    assert sharing.add_receiver(other).status == 200                        # per sub-merchant

import pytest

from chalicelib.domain import attribution as a

A, B = "store-a", "store-b"


@pytest.mark.parametrize("owner, scanned, rebind, expected", [
    (None, A, False, (A, a.SCANNED, a.FIRST_SCAN)),
    (a.Owner(A, a.ROUTED), B, False, (B, a.SCANNED, a.SCAN_OVERRIDES_ROUTING)),
    (a.Owner(A, a.ROUTED), A, False, (A, a.SCANNED, "REPEAT_SCAN")),
    (a.Owner(A, a.SCANNED), A, False, (None, None, "REPEAT_SCAN")),
    (a.Owner(A, a.SCANNED), B, False, (None, None, "VISIT_RECORDED")),
    (a.Owner(A, a.PURCHASED), B, False, (None, None, "VISIT_RECORDED")),
    (a.Owner(A, a.SCANNED), B, True, (B, a.SCANNED, a.SCAN_REBINDS)),
    (a.Owner(A, a.PURCHASED), B, True, (B, a.SCANNED, a.SCAN_REBINDS)),
])
def test_scans_bind_as_the_rules_say(owner, scanned, rebind, expected):
    decision = a.on_scan(owner, scanned, rebind)
    assert (decision.bind_to, decision.basis, decision.reason) == expected


@pytest.mark.parametrize("owner, store, expected", [
    (None, A, (A, a.PURCHASED, a.LAST_PURCHASE)),
    (a.Owner(A, a.ROUTED), B, (B, a.PURCHASED, a.LAST_PURCHASE)),
    (a.Owner(A, a.SCANNED), B, (B, a.PURCHASED, a.LAST_PURCHASE)),
    (a.Owner(A, a.SCANNED), A, (A, a.PURCHASED, a.LAST_PURCHASE)),
    (a.Owner(A, a.PURCHASED), B, (B, a.PURCHASED, a.LAST_PURCHASE)),
    (a.Owner(A, a.PURCHASED), A, (None, None, "REPEAT_PURCHASE")),
])
def test_the_last_purchase_wins(owner, store, expected):
    decision = a.on_purchase(owner, store)
    assert (decision.bind_to, decision.basis, decision.reason) == expected


def test_routing_only_places_nobodys_customer():
    assert a.on_routing(None, A).bind_to == A and a.on_routing(None, A).basis == a.ROUTED
    for basis in (a.ROUTED, a.SCANNED, a.PURCHASED):
        assert a.on_routing(a.Owner(B, basis), A).bind_to is None


@pytest.mark.parametrize("current, new, is_new, rule, expected", [
    (None, "p1", True, a.PROMOTER_FIRST_TOUCH, True),
    ("p1", "p2", False, a.PROMOTER_FIRST_TOUCH, False),
    (None, "p1", False, a.PROMOTER_NEW_CUSTOMERS_ONLY, False),
    (None, "p1", True, a.PROMOTER_NEW_CUSTOMERS_ONLY, True),
    ("p1", "p2", False, a.PROMOTER_LAST_TOUCH, True),
    ("p1", "p1", False, a.PROMOTER_LAST_TOUCH, False),
    (None, "me", True, a.PROMOTER_LAST_TOUCH, False),
])
def test_promoter_binding_rules(current, new, is_new, rule, expected):
    assert a.should_bind_promoter(current, new, is_new, "me", rule) is expected


def test_an_unknown_promoter_rule_is_refused():
    with pytest.raises(ValueError):
        a.should_bind_promoter(None, "p", True, "me", "RANDOM")


def test_the_promoter_chain_stops_at_three_levels_and_never_loops():
    assert a.promoter_chain("B", ["A"], "C") == ["B", "A"]
    assert a.promoter_chain("D", ["C", "B", "A"], "E") == ["D", "C", "B"]
    assert a.promoter_chain("B", ["C", "A"], "C") == ["B"]
    assert a.promoter_chain("B", ["B", "A"], "C") == ["B"]


def test_points_days_are_beijing_days():
    ten_am = 1795312800                                       # 2026-11-22 10:00 Beijing (02:00 UTC)
    assert a.beijing_day(ten_am) == "2026-11-22"
    assert a.beijing_day(ten_am + 14 * 3600 - 1) == "2026-11-22"   # 23:59:59 Beijing
    assert a.beijing_day(ten_am + 14 * 3600) == "2026-11-23"       # midnight Beijing, 16:00 UTC on the 22nd


@pytest.mark.parametrize("current, promoter, upline, is_new, rule, bind, chain, reason", [
    (None, "A", [], True, a.PROMOTER_FIRST_TOUCH, True, ("A",), a.PROMOTER_BOUND),
    (None, "B", ["A"], False, a.PROMOTER_FIRST_TOUCH, True, ("B", "A"), a.PROMOTER_BOUND),
    (None, "D", ["C", "B", "A"], True, a.PROMOTER_FIRST_TOUCH, True, ("D", "C", "B"), a.PROMOTER_BOUND),
    ("A", "Z", [], True, a.PROMOTER_FIRST_TOUCH, False, (), a.PROMOTER_KEPT),
    ("A", "A", [], True, a.PROMOTER_LAST_TOUCH, False, (), a.PROMOTER_KEPT),
    ("A", "Z", ["Y"], False, a.PROMOTER_LAST_TOUCH, True, ("Z", "Y"), a.PROMOTER_BOUND),
    (None, "A", [], False, a.PROMOTER_NEW_CUSTOMERS_ONLY, False, (), a.NOT_A_NEW_CUSTOMER),
    (None, "A", [], True, a.PROMOTER_NEW_CUSTOMERS_ONLY, True, ("A",), a.PROMOTER_BOUND),
    ("A", "Z", [], True, a.PROMOTER_NEW_CUSTOMERS_ONLY, False, (), a.PROMOTER_KEPT),
    (None, "me", [], True, a.PROMOTER_LAST_TOUCH, False, (), a.OWN_SHARE_CODE),
    (None, "C", ["B", "me"], True, a.PROMOTER_LAST_TOUCH, False, (), a.WOULD_LOOP),
])
def test_decide_promoter(current, promoter, upline, is_new, rule, bind, chain, reason):
    assert a.decide_promoter("me", current, promoter, upline, is_new, rule) == a.PromoterDecision(bind, chain, reason)


def test_a_new_customer_is_one_first_seen_within_a_day_who_never_bought():
    now = 1_800_000_000
    assert a.is_new_customer(now - 86400, None, now) and a.is_new_customer(now - 10, a.SCANNED, now)
    assert not a.is_new_customer(now - 86401, None, now)
    assert not a.is_new_customer(now - 10, a.PURCHASED, now)
    with pytest.raises(ValueError):
        a.decide_promoter("me", None, "A", [], True, "RANDOM")

"""Scene rules: tokens, WeChat's scene charset, campaigns and welcomes."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import scenes as rules
from chalicelib.errors import ValidationFailed

WECHAT_EXTRAS = "!#$&'()*+,/:;=?@-._~"


@pytest.mark.parametrize("kind, letter", [("store", "s"), ("staff", "f"), ("campaign", "c"),
                                          ("product", "p"), ("promoter", "m")])
def test_a_token_starts_with_its_kinds_letter_and_is_short(kind, letter):
    token = rules.new_scene_token(kind)
    assert token.startswith(letter + ".") and len(token) == 12
    assert all(c in rules.BASE62 for c in token[2:])


def test_tokens_do_not_repeat():
    assert len({rules.new_scene_token("store") for _ in range(2000)}) == 2000


def test_an_unknown_kind_has_no_token():
    with pytest.raises(ValueError):
        rules.new_scene_token("poster")


@given(st.sampled_from(rules.KINDS))
def test_generated_tokens_always_pass_wechats_scene_rule(kind):
    token = rules.new_scene_token(kind)
    assert rules.check_scene(token) == token


@given(st.text(alphabet=st.sampled_from(rules.BASE62 + WECHAT_EXTRAS), min_size=1, max_size=32))
def test_every_string_of_the_charset_up_to_32_is_a_scene(text):
    assert rules.check_scene(text) == text


@pytest.mark.parametrize("text", ["", "a" * 33, "100%", "门店", "a b", "tab\t", "x\n", None, 5, ["s.x"], 'q"', "a<b", "^"])
def test_what_wechat_refuses_is_refused(text):
    with pytest.raises(ValidationFailed):
        rules.check_scene(text)


@pytest.mark.parametrize("text", ["a" * 32, "s.AbC123xyz0", "st/1?x=y&z=!#$'()*+,:;@-._~"])
def test_what_wechat_takes_is_taken(text):
    assert rules.check_scene(text) == text


CAMPAIGN = {"name": "Back to school", "store_ids": ["store-a", "store-b"],
            "starts_at": "2026-09-01T00:00:00+08:00", "ends_at": "2026-09-15T00:00:00+08:00"}


def test_a_good_campaign_is_kept_as_sent():
    assert rules.check_campaign(dict(CAMPAIGN)) == CAMPAIGN


@pytest.mark.parametrize("change", [
    {"name": ""}, {"name": "x" * 51}, {"name": 7}, {"store_ids": []}, {"store_ids": [f"s{i}" for i in range(51)]},
    {"store_ids": ["a", "a"]}, {"store_ids": ["bad id"]}, {"store_ids": "store-a"},
    {"starts_at": "2026-09-15T00:00:00+08:00"}, {"ends_at": "2026-08-01T00:00:00+08:00"},
    {"starts_at": "2026-09-01T00:00:00"}, {"starts_at": "yesterday"}, {"ends_at": None}, {"extra": 1},
])
def test_a_bad_campaign_is_refused(change):
    with pytest.raises(ValidationFailed):
        rules.check_campaign({**CAMPAIGN, **change})


def test_campaign_limits_are_inclusive():
    ok = {**CAMPAIGN, "name": "x" * 50, "store_ids": [f"s{i}" for i in range(50)]}
    assert rules.check_campaign(ok)["name"] == "x" * 50


def test_a_campaign_must_be_an_object():
    with pytest.raises(ValidationFailed):
        rules.check_campaign(["x"])


def test_a_welcome_fills_its_blanks():
    assert rules.check_welcome({}) == {"title": "", "message": "", "featured_skus": []}
    assert rules.check_welcome({"title": "t" * 30, "message": "m" * 200, "featured_skus": ["A-1"] + [f"S{i}" for i in range(5)]})


@pytest.mark.parametrize("welcome", [
    {"title": "t" * 31}, {"message": "m" * 201}, {"featured_skus": [f"S{i}" for i in range(7)]},
    {"featured_skus": ["not a sku"]}, {"featured_skus": ["A\n"]}, {"featured_skus": ["A", "A"]}, {"featured_skus": "A"},
    {"title": 5}, {"colour": "red"}, "hello",
])
def test_a_bad_welcome_is_refused(welcome):
    with pytest.raises(ValidationFailed):
        rules.check_welcome(welcome)


@pytest.mark.parametrize("kind, parts", [
    ("store", {"store_id": "s"}), ("staff", {"staff_id": "f"}), ("staff", {"staff_id": "f", "store_id": "s"}),
    ("product", {"sku": "A"}), ("product", {"sku": "A", "store_id": "s"}), ("campaign", {"campaign": CAMPAIGN}),
])
def test_each_kind_names_what_it_needs(kind, parts):
    rules.check_parts(kind, parts)


@pytest.mark.parametrize("kind, parts", [
    ("store", {}), ("store", {"store_id": "s", "sku": "A"}), ("staff", {"store_id": "s"}), ("product", {}),
    ("campaign", {"store_id": "s"}), ("campaign", {"campaign": CAMPAIGN, "store_id": "s"}), ("banner", {}),
])
def test_a_kind_missing_or_with_extra_parts_is_refused(kind, parts):
    with pytest.raises(ValidationFailed):
        rules.check_parts(kind, parts)


def test_the_printable_url_carries_the_scene():
    assert rules.print_url("s.AbC123xyz0") == "https://mall.storelink.invalid/s/s.AbC123xyz0"

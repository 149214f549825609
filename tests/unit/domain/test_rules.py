import math
import re

import pytest

from chalicelib.domain.customers import WeChatIdentity, identity_key, new_customer_id
from chalicelib.domain.geo import check_coordinates
from chalicelib.domain.login import check_login_code
from chalicelib.domain.time import parse_rfc3339, rfc3339
from chalicelib.errors import ValidationFailed


def test_the_unionid_is_looked_up_before_the_openid():
    assert WeChatIdentity("o_a", "u_a").lookup_keys() == ["unionid#u_a", "openid#o_a"]
    assert WeChatIdentity("o_a").lookup_keys() == ["openid#o_a"]


def test_identity_kinds_are_a_closed_list():
    with pytest.raises(ValueError):
        identity_key("phone", "138")


def test_customer_ids_are_opaque_url_safe_and_unique():
    ids = {new_customer_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"cu_[A-Za-z0-9_-]{16}", i) for i in ids)


@pytest.mark.parametrize("code", [None, 5, "", "x" * 129, "has space", "中文", "tab\tcode", ["a"]])
def test_login_codes_that_cannot_be_real_are_refused_before_calling_wechat(code):
    with pytest.raises(ValidationFailed):
        check_login_code(code)


def test_a_plausible_login_code_passes():
    assert check_login_code("0a1B2c-_x") == "0a1B2c-_x"


def test_times_are_written_in_beijing_time():
    assert rfc3339(0) == "1970-01-01T08:00:00+08:00"
    assert parse_rfc3339("2026-11-22T10:00:00+08:00").timestamp() == 1795312800


def test_naive_times_are_refused():
    from datetime import datetime

    with pytest.raises(ValueError):
        rfc3339(datetime(2026, 1, 1))


@pytest.mark.parametrize("lat, lng", [(91, 0), (0, 180.5), ("30", 104), (True, 1), (math.nan, 1), (None, 1)])
def test_impossible_coordinates_are_refused(lat, lng):
    with pytest.raises(ValidationFailed):
        check_coordinates(lat, lng)

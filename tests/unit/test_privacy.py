"""The privacy check every back-office answer of the suite goes through, and the masks."""
import pytest

from chalicelib.domain.sharing import mask_openid, mask_phone
from tests.privacy import assert_no_personal_data, personal_data_in


@pytest.mark.parametrize("body, found", [
    (b'{"openid": "o_alice"}', ["o_alice"]),
    (b'{"oa": "oa_bob-1"}', ["oa_bob-1"]),
    ("cu_1,o_carol,x\r\n", ["o_carol"]),
    (b'{"phone": "13812345678"}', ["13812345678"]),
    (b'{"openid_masked": "o_a***ce", "phone_masked": "138****5678"}', []),
    (b'{"customer_id": "cu_o_alice", "at": 1763901234.5, "change": "001763901234567#x"}', []),
    (b'{"scene": "s.aBc_o_x9"}', []),
])
def test_the_check_finds_raw_openids_and_phones_only(body, found):
    assert personal_data_in(body) == found


def test_a_back_office_answer_with_an_openid_fails_and_others_are_not_checked():
    with pytest.raises(AssertionError, match="o_alice"):
        assert_no_personal_data("/v1/admin/customers", b'{"items": [{"openid": "o_alice"}]}')
    assert_no_personal_data("/v1/me", b'{"openid": "o_alice"}') is None


@pytest.mark.parametrize("openid, masked", [("o_alice", "o_a***ce"), ("oa_x", "o***"), (None, None),
                                            ("oAbCdEfGhIjKlMnOpQrStUvWxYz12", "oAb***12")])
def test_openids_are_masked(openid, masked):
    assert mask_openid(openid) == masked
    assert not personal_data_in(masked or "")


@pytest.mark.parametrize("phone, masked", [("13812345678", "138****5678"), ("+86 138 1234 5678", "138****5678"),
                                           ("12", "***"), (None, None)])
def test_phones_are_masked(phone, masked):
    assert mask_phone(phone) == masked

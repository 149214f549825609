"""The sandbox checks merchant signatures as WeChat does, and signs what it sends."""
import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infra.local.sandbox.faults import FaultError, validate
from infra.local.sandbox.signing import (AuthorizationError, SandboxPayKeys, encrypt_resource, parse_authorization,
                                         request_message, response_message, rsa_sign, signed_headers,
                                         verify_request)

SP_MCHID = "1900000100"
NOW = 1_800_000_000


@pytest.fixture
def keys(local_keys):
    return SandboxPayKeys.load(local_keys)


@pytest.fixture
def merchant_key(local_keys):
    return serialization.load_pem_private_key((local_keys / "wechatpay" / "merchant_private_key.pem").read_bytes(),
                                              password=None)


def authorization(keys, merchant_key, method, target, body, ts=NOW, nonce="N0NCE", mchid=SP_MCHID, serial=None):
    signature = rsa_sign(merchant_key, request_message(method, target, str(ts), nonce, body))
    return (f'WECHATPAY2-SHA256-RSA2048 mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{ts}",serial_no="{serial or keys.merchant_serial_no}"')


def test_a_well_signed_request_passes_and_yields_its_fields(keys, merchant_key):
    target, body = "/v3/pay/partner/transactions/out-trade-no/o123456?sp_mchid=1&sub_mchid=2", b""
    fields = verify_request(keys, SP_MCHID, "GET", target, body,
                            authorization(keys, merchant_key, "GET", target, body), NOW + 300)
    assert fields["mchid"] == SP_MCHID and fields["nonce_str"] == "N0NCE"


@pytest.mark.parametrize("change", ["method", "target", "body", "stale", "future", "serial", "mchid"])
def test_anything_off_is_refused(keys, merchant_key, change):
    method, target, body = "POST", "/v3/refund/domestic/refunds", b'{"a":1}'
    header = authorization(keys, merchant_key, method, target, body,
                           ts=NOW - 301 if change == "stale" else NOW + 301 if change == "future" else NOW,
                           mchid="1900000999" if change == "mchid" else SP_MCHID,
                           serial="ABC" if change == "serial" else None)
    sent = {"method": ("PUT", target, body), "target": (method, target + "?x=1", body),
            "body": (method, target, b'{"a":2}')}.get(change, (method, target, body))
    with pytest.raises(AuthorizationError):
        verify_request(keys, SP_MCHID, *sent, header, NOW)


@pytest.mark.parametrize("header", [None, "", "Bearer x", "WECHATPAY2-SHA256-RSA2048 mchid=1900000100",
                                    'WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",signature="s",timestamp="t",'
                                    'serial_no="x"'])
def test_malformed_headers_are_refused(header):
    with pytest.raises(AuthorizationError):
        parse_authorization(header)


def test_responses_are_signed_with_the_platform_key_over_ts_nonce_body(keys, local_keys):
    body = '{"prepay_id":"wx1"}'.encode()
    headers = signed_headers(keys, body, NOW)
    public = serialization.load_pem_public_key((local_keys / "wechatpay" / "platform_public_key.pem").read_bytes())
    public.verify(base64.b64decode(headers["Wechatpay-Signature"]),
                  response_message(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body),
                  padding.PKCS1v15(), hashes.SHA256())
    assert headers["Wechatpay-Timestamp"] == str(NOW)
    assert headers["Wechatpay-Serial"] == keys.public_key_id.strip()
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    bad = signed_headers(keys, body, NOW, bad_signature=True)
    with pytest.raises(Exception):
        public.verify(base64.b64decode(bad["Wechatpay-Signature"]),
                      response_message(bad["Wechatpay-Timestamp"], bad["Wechatpay-Nonce"], body),
                      padding.PKCS1v15(), hashes.SHA256())


def test_a_resource_decrypts_with_the_apiv3_key(keys):
    resource = encrypt_resource(keys.apiv3_key, {"out_trade_no": "o1", "amount": {"total": 990}}, "transaction",
                                "transaction")
    assert len(resource["nonce"]) == 12 and resource["algorithm"] == "AEAD_AES_256_GCM"
    plain = AESGCM(keys.apiv3_key.encode()).decrypt(resource["nonce"].encode(),
                                                    base64.b64decode(resource["ciphertext"]), b"transaction")
    assert json.loads(plain) == {"out_trade_no": "o1", "amount": {"total": 990}}


@pytest.mark.parametrize("body, kind, params", [
    ({"kind": "notify_fail", "once": True}, "notify_fail", {}),
    ({"kind": "receiver_fails", "account": "o_a"}, "receiver_fails", {"account": "o_a", "reason": "NO_RELATION"}),
    ({"kind": "amount_differs", "date": "2026-11-22", "out_trade_no": "o1", "total_fen": 5},
     "amount_differs", {"date": "2026-11-22", "out_trade_no": "o1", "total_fen": 5}),
])
def test_fault_bodies_are_read(body, kind, params):
    assert validate(body)[:2] == (kind, params)


@pytest.mark.parametrize("body", [{"kind": "meteor"}, {"kind": "notify_fail", "once": "yes"},
                                  {"kind": "bill_hash_corrupt"}, {"kind": "bill_hash_corrupt", "date": "22/11"},
                                  {"kind": "notify_fail", "extra": 1}, []])
def test_bad_fault_bodies_are_refused(body):
    with pytest.raises(FaultError):
        validate(body)

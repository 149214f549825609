"""POST /v1/callbacks/wechatpay: verified before anything believes it."""
import json
import time

import pytest
from chalice.test import Client

from chalicelib.services import notifications
from tests.openapi import ValidatingClient
from tests.wechatpay_notifications import NotificationFactory, sign

TRANSACTION = {"sp_mchid": "1900000100", "sub_mchid": "1900001001", "sp_appid": "wx5f0c0ffee5a1d001",
               "out_trade_no": "ord_0001", "transaction_id": "4200000000202611230000000001",
               "trade_state": "SUCCESS", "amount": {"total": 9900, "payer_total": 9900, "currency": "CNY"}}


WALL = int(time.time())


@pytest.fixture
def callbacks(test_env, monkeypatch):
    import app as app_module

    # The wall clock, frozen: a 301-second skew must not depend on when the second ticks.
    monkeypatch.setattr("chalicelib.api.callbacks.time.time", lambda: WALL + 0.5)

    received = []
    monkeypatch.setitem(notifications.HANDLERS, "TRANSACTION.SUCCESS", received.append)
    with Client(app_module.app, stage_name="test") as client:
        yield ValidatingClient(client), NotificationFactory(test_env), received


def post(client, headers, body):
    return client.http.post("/v1/callbacks/wechatpay", headers=headers, body=body)


def test_a_genuine_notification_is_decrypted_and_dispatched(callbacks):
    client, factory, received = callbacks
    headers, body = factory.build(TRANSACTION)
    response = post(client, headers, body)
    assert response.status_code == 204
    assert [n.resource for n in received] == [TRANSACTION]
    assert received[0].event_type == "TRANSACTION.SUCCESS"


def _resign(factory, headers, body):
    headers["Wechatpay-Signature"] = sign(factory.private_key, headers["Wechatpay-Timestamp"],
                                          headers["Wechatpay-Nonce"], body)


def bad_signature(factory, headers, body):
    headers["Wechatpay-Signature"] = headers["Wechatpay-Signature"][::-1]
    return headers, body


def one_byte_changed(factory, headers, body):
    return headers, body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.SUCCESs"')


def timestamp_301s_old(factory, headers, body):
    headers["Wechatpay-Timestamp"] = str(WALL - 301)
    _resign(factory, headers, body)
    return headers, body


def timestamp_301s_ahead(factory, headers, body):
    headers["Wechatpay-Timestamp"] = str(WALL + 301)
    _resign(factory, headers, body)
    return headers, body


def unknown_serial(factory, headers, body):
    headers["Wechatpay-Serial"] = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    return headers, body


def signature_probe(factory, headers, body):
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    return headers, body


def no_signature_type(factory, headers, body):
    del headers["Wechatpay-Signature-Type"]
    return headers, body


def undecryptable_resource(factory, headers, body):
    envelope = json.loads(body)
    envelope["resource"]["ciphertext"] = envelope["resource"]["ciphertext"][:-8] + "AAAAAAAA"
    body = json.dumps(envelope).encode()
    _resign(factory, headers, body)
    return headers, body


def wrong_apiv3_key(factory, headers, body):
    return factory.build(TRANSACTION, apiv3_key="k" * 32, timestamp=WALL)


def not_json(factory, headers, body):
    body = b"{not json"
    _resign(factory, headers, body)
    return headers, body


REFUSALS = [
    (bad_signature, "BAD_SIGNATURE"), (one_byte_changed, "BAD_SIGNATURE"),
    (timestamp_301s_old, "STALE_TIMESTAMP"), (timestamp_301s_ahead, "STALE_TIMESTAMP"),
    (unknown_serial, "UNKNOWN_SERIAL"), (signature_probe, "SIGNATURE_PROBE"),
    (no_signature_type, "MISSING_HEADER"), (undecryptable_resource, "UNDECRYPTABLE"),
    (wrong_apiv3_key, "UNDECRYPTABLE"), (not_json, "BAD_BODY"),
]


@pytest.mark.parametrize("tamper, reason", REFUSALS, ids=[t.__name__ for t, _ in REFUSALS])
def test_a_notification_that_does_not_verify_is_401_and_logged(callbacks, capsys, monkeypatch, tamper, reason):
    client, factory, received = callbacks
    outbound = []
    import requests

    monkeypatch.setattr(requests.Session, "request", lambda *a, **k: outbound.append(a) or None)
    headers, body = tamper(factory, *factory.build(TRANSACTION))
    response = post(client, headers, body)
    assert response.status_code == 401
    answer = json.loads(response.body)
    assert answer["code"] == "FAIL" and answer["message"]
    assert received == [] and outbound == []
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(entry.get("message") == "callback refused" and entry.get("reason") == reason for entry in logged), logged


def test_a_notification_within_300_seconds_either_way_is_accepted(callbacks):
    client, factory, received = callbacks
    for skew in (-299, 299):
        assert post(client, *factory.build(TRANSACTION, timestamp=WALL + skew)).status_code == 204
    assert len(received) == 2

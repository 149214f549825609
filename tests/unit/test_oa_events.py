"""Official-account events: WeChat's signature rule and XML (pure), and the OA server URL
in-process on moto — a follow or scan through a parametric QR binds like a scan, once,
for the same customer a mini-program login gives; anything unverified is refused."""
import hashlib
import json
import time

import pytest
from chalice.test import Client

from chalicelib.domain import official_account as oa
from chalicelib.errors import InvalidSignature, MalformedXml, PayloadTooLarge, UpstreamUnavailable, ValidationFailed
from chalicelib.services import wiring
from infra.local.sandbox.official_account import event_xml, signed_query
from tests.helpers import FakeMiniProgram, FakePayments
from tests.openapi import ValidatingClient

TOKEN = "Sandb0xServerT0ken"
NOW = 1_795_000_000


def xml(body: str) -> bytes:
    return f"<xml>{body}</xml>".encode()


EVENT_FIELDS = ("<ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oa_ann]]></FromUserName>"
                "<CreateTime>1795000000</CreateTime><MsgType><![CDATA[event]]></MsgType>")


# --- the signature (pure) ------------------------------------------------------------

def test_the_signature_is_sha1_of_token_timestamp_and_nonce_sorted_and_joined():
    expected = hashlib.sha1("".join(sorted([TOKEN, "1795000000", "4242"])).encode()).hexdigest()
    assert oa.sign(TOKEN, "1795000000", "4242") == expected
    oa.check_signature(TOKEN, expected, "1795000000", "4242", wall_now=NOW)
    oa.check_signature(TOKEN, expected.upper(), "1795000000", "4242", wall_now=NOW + 300)


@pytest.mark.parametrize("signature, timestamp, nonce, wall_now, reason", [
    ("0" * 40, "1795000000", "4242", NOW, "BAD_SIGNATURE"),
    (None, "1795000000", "4242", NOW, "MISSING_SIGNATURE"),
    ("sig", None, "4242", NOW, "MISSING_SIGNATURE"),
    ("sig", "1795000000", "", NOW, "MISSING_SIGNATURE"),
    ("sig", "17950e5", "4242", NOW, "BAD_SIGNATURE"),
    ("good", "1795000000", "4242", NOW + 301, "STALE_TIMESTAMP"),
    ("good", "1795000000", "4242", NOW - 301, "STALE_TIMESTAMP"),
])
def test_a_wrong_missing_or_stale_signature_is_refused(signature, timestamp, nonce, wall_now, reason):
    if signature == "good":
        signature = oa.sign(TOKEN, timestamp, nonce)
    with pytest.raises(InvalidSignature) as refused:
        oa.check_signature(TOKEN, signature, timestamp, nonce, wall_now=wall_now)
    assert refused.value.status == 401 and refused.value.details == {"reason": reason}


def test_a_signature_made_with_another_token_is_refused():
    with pytest.raises(InvalidSignature):
        oa.check_signature(TOKEN, oa.sign("another", "1795000000", "1"), "1795000000", "1", wall_now=NOW)


def test_echostr_is_only_wechats_challenge():
    assert oa.check_echostr("5837397520286181467") == "5837397520286181467"
    for bad in (None, "", "<script>", "x" * 129):
        with pytest.raises(ValidationFailed):
            oa.check_echostr(bad)


# --- the XML (pure) ------------------------------------------------------------------

def test_a_follow_through_a_parametric_code_is_a_scan_of_its_scene():
    event = oa.parse_event(event_xml("oa_ann", "subscribe", "s.chunxi", 1795000000, ticket="gQH47"))
    assert event == oa.OaEvent(to_user="gh_5f0c0ffee5a1", from_user="oa_ann", create_time=1795000000,
                               msg_type="event", event="subscribe", event_key="qrscene_s.chunxi", ticket="gQH47")
    assert event.qr_scan() == oa.QrScan("s.chunxi", oa.VIA_SUBSCRIBE)
    assert event.dedup_key == "oa_ann#1795000000"


def test_a_scan_while_following_has_the_scene_without_prefix():
    event = oa.parse_event(event_xml("oa_ann", "SCAN", "12345", 1795000001))
    assert (event.event, event.event_key) == ("SCAN", "12345")
    assert event.qr_scan() == oa.QrScan("12345", oa.VIA_SCAN)


@pytest.mark.parametrize("body", [
    xml(EVENT_FIELDS + "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey>"),
    xml(EVENT_FIELDS + "<Event><![CDATA[subscribe]]></Event>"),
    xml(EVENT_FIELDS + "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_]]></EventKey>"),
    xml(EVENT_FIELDS + "<Event><![CDATA[unsubscribe]]></Event><EventKey><![CDATA[]]></EventKey>"),
    xml(EVENT_FIELDS + "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[MENU_1]]></EventKey>"),
    xml(EVENT_FIELDS.replace("event", "text") + "<Content><![CDATA[hello]]></Content>"),
    xml(EVENT_FIELDS + "<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[" + "x" * 65 + "]]></EventKey>"),
])
def test_a_plain_follow_other_events_and_messages_are_no_scan(body):
    assert oa.parse_event(body).qr_scan() is None


def test_the_sandbox_writes_cdata_that_survives_any_scene():
    event = oa.parse_event(event_xml("oa_ann", "SCAN", "a]]>b<&", 1795000002))
    assert event.qr_scan().scene == "a]]>b<&"


@pytest.mark.parametrize("body", [
    b"", b"   ", b"not xml", b"<xml><FromUserName>oa_ann</xml>", b"<xml>", b"\xff\xfe<xml/>",
    b'{"json": true}', b"<notxml></notxml>",
])
def test_malformed_xml_is_refused(body):
    with pytest.raises(MalformedXml):
        oa.parse_event(body)


XXE = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b"<xml><ToUserName>gh_1</ToUserName><FromUserName>&xxe;</FromUserName><CreateTime>1</CreateTime>"
       b"<MsgType>event</MsgType></xml>")
BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol">'
                  + b"".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1 or "") + ";") * 10}">'.encode()
                             for i in range(1, 10))
                  + b"]><xml><FromUserName>&lol9;</FromUserName></xml>")
EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml/>'
PARAMETER_ENTITY = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p">%p;]>'
                    b"<xml/>")


@pytest.mark.parametrize("body", [XXE, BILLION_LAUGHS, EXTERNAL_DTD, PARAMETER_ENTITY])
def test_xxe_and_entity_bombs_are_refused_before_anything_is_expanded(body):
    started = time.perf_counter()
    with pytest.raises(MalformedXml) as refused:
        oa.parse_event(body)
    assert time.perf_counter() - started < 0.5
    assert "DTD" in refused.value.message or "well-formed" in refused.value.message


def test_an_oversized_body_is_refused_unparsed():
    with pytest.raises(PayloadTooLarge):
        oa.parse_event(b"<xml>" + b" " * oa.MAX_BODY_BYTES + b"</xml>")


@pytest.mark.parametrize("body, field", [
    (xml("<ToUserName>gh_1</ToUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>"), "FromUserName"),
    (xml("<ToUserName>gh_1</ToUserName><FromUserName>oa ann</FromUserName><CreateTime>1</CreateTime>"
         "<MsgType>event</MsgType>"), "FromUserName"),
    (xml("<ToUserName>gh_1</ToUserName><FromUserName>oa_ann</FromUserName><CreateTime>soon</CreateTime>"
         "<MsgType>event</MsgType>"), "CreateTime"),
    (xml("<ToUserName>gh_1</ToUserName><FromUserName>oa_ann</FromUserName><CreateTime>1</CreateTime>"), "MsgType"),
])
def test_a_push_without_its_fields_is_refused(body, field):
    with pytest.raises(ValidationFailed) as refused:
        oa.parse_event(body)
    assert refused.value.details == {"field": field}


# --- the OA server URL, in-process on moto ----------------------------------------------

class FakeOfficialAccount:
    """The OA's user info with the sandbox's rules: oa_<x> has unionid u_<x>."""

    def __init__(self):
        self.calls: list[str] = []
        self.fail = 0

    def user_info(self, openid):
        from chalicelib.wechat.official_account import OaUser

        self.calls.append(openid)
        if self.fail:
            self.fail -= 1
            raise UpstreamUnavailable("WeChat did not say who follows the official account.")
        if openid.startswith("oa_nounion_"):
            return OaUser(openid, None, True)
        if not openid.startswith("oa_"):
            return None
        return OaUser(openid, "u_" + openid.removeprefix("oa_"), True)


class OaWorld:
    def __init__(self, client, official_account):
        self.client, self.official_account = client, official_account
        self.create_time = NOW

    def push(self, openid, event="subscribe", scene=None, create_time=None, token=None, query=None,
             body=None, content_type="text/xml"):
        """What WeChat POSTs: the sandbox's own XML and signed query string."""
        if create_time is None:
            self.create_time += 1
            create_time = self.create_time
        query = query if query is not None else signed_query(token or wiring.oa_server_token(), openid, time.time())
        body = body if body is not None else event_xml(openid, event, scene, create_time)
        response = self.client.http.post(f"/v1/callbacks/wechat-oa?{query}", body=body,
                                         headers={"Content-Type": content_type})
        return response.status_code, response.body.decode(), response.headers

    def login(self, x):
        response = self.client.http.post("/v1/sessions", headers={"Content-Type": "application/json"},
                                         body=json.dumps({"code": f"sandbox-{x}"}))
        assert response.status_code == 200, response.body
        return json.loads(response.body)

    def me(self, token):
        response = self.client.http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        return json.loads(response.body)


@pytest.fixture
def world(dynamodb, monkeypatch):
    from infra.local.seed import seed_demo_data

    seed_demo_data(wiring.now())
    official_account, wechat, payments = FakeOfficialAccount(), FakeMiniProgram(), FakePayments()
    monkeypatch.setattr(wiring, "official_account", lambda: official_account)
    monkeypatch.setattr(wiring, "miniprogram", lambda: wechat)
    monkeypatch.setattr(wiring, "payments", lambda: payments)
    import app as app_module

    with Client(app_module.app, stage_name="test") as client:
        yield OaWorld(ValidatingClient(client), official_account)


def store_scene(scene, store_id):
    from chalicelib.domain.scenes import Scene, store_card

    store = wiring.network().get_store(store_id)
    wiring.scenes().add(Scene(scene=scene, kind="store", brand_id="brand-lumen", store_id=store_id,
                              dealer_id=store.dealer_id, store_card=store_card(store), created_at=wiring.now()))


def scans_of(customer_id):
    from chalicelib.db.records import ScanRecord

    return list(ScanRecord.by_customer.query(customer_id))


def scan_events_of(customer_id):
    from chalicelib.db.records import OutboxRecord

    return [o.payload for o in OutboxRecord.scan()  # test only
            if o.kind == "SCAN_RECORDED" and o.payload["customer_id"] == customer_id]


def identity(key):
    from chalicelib.db.records import CustomerIdentityRecord

    try:
        return CustomerIdentityRecord.get(key).customer_id
    except CustomerIdentityRecord.DoesNotExist:
        return None


def oa_event(key):
    return wiring.oa_events().get(key)


def test_a_follow_through_a_store_code_binds_the_customer_a_mini_program_login_then_finds(world):
    store_scene("oa.chunxi", "store-cd-chunxi")
    status, body, headers = world.push("oa_ann", "subscribe", "oa.chunxi")
    assert (status, body) == (200, "success") and headers["Content-Type"].startswith("text/plain")

    customer_id = identity("oa_openid#oa_ann")
    assert customer_id and identity("unionid#u_ann") == customer_id
    [scan] = scans_of(customer_id)
    assert (scan.scene, scan.store_id, scan.outcome, scan.points_awarded) == \
        ("oa.chunxi", "store-cd-chunxi", "FIRST_SCAN", 10)
    [event] = scan_events_of(customer_id)
    assert (event["channel"], event["scan_id"], event["store_id"]) == ("OA_SUBSCRIBE", scan.scan_id, "store-cd-chunxi")
    applied = oa_event(f"oa_ann#{world.create_time}")
    assert (applied.state, applied.channel, applied.outcome, applied.scan_id, applied.customer_id) == \
        ("APPLIED", "OA_SUBSCRIBE", "FIRST_SCAN", scan.scan_id, customer_id)

    session = world.login("ann")                    # the mini-program login sandbox-ann: o_ann, u_ann
    assert (session["customer_id"], session["new_customer"]) == (customer_id, False)
    me = world.me(session["token"])
    assert me["owning_store"]["store_id"] == "store-cd-chunxi" and me["points_balance"] == 10
    # First seen through the OA, the customer learns its mini-program openid at that login.
    from chalicelib.db.records import CustomerRecord

    assert CustomerRecord.get(customer_id).openid == "o_ann" and identity("openid#o_ann") == customer_id
    assert [c.to_store_id for c in wiring.ownership().history(customer_id)] == ["store-cd-chunxi"]


def test_a_mini_program_customer_who_follows_is_the_same_customer_and_is_looked_up_once(world):
    store_scene("oa.optics", "store-wh-optics")
    store_scene("oa.tianfu", "store-cd-tianfu")
    session = world.login("ben")
    assert world.push("oa_ben", "subscribe", "oa.optics")[:2] == (200, "success")
    assert world.push("oa_ben", "SCAN", "oa.tianfu")[:2] == (200, "success")

    assert identity("oa_openid#oa_ben") == session["customer_id"]
    assert world.official_account.calls == ["oa_ben"]      # the second event found oa_openid#oa_ben
    scans = sorted(scans_of(session["customer_id"]), key=lambda s: s.at)
    assert [(s.scene, s.outcome) for s in scans] == [("oa.optics", "FIRST_SCAN"), ("oa.tianfu", "VISIT_RECORDED")]
    assert sorted(e["channel"] for e in scan_events_of(session["customer_id"])) == ["OA_SCAN", "OA_SUBSCRIBE"]
    assert world.me(session["token"])["owning_store"]["store_id"] == "store-wh-optics"


def test_a_scan_while_already_following_binds_a_customer_still_without_a_store(world):
    store_scene("oa.scan", "store-cd-chunxi")
    assert world.push("oa_cai", "subscribe")[:2] == (200, "success")      # a plain follow: nothing happens
    assert identity("oa_openid#oa_cai") is None and world.official_account.calls == []
    assert world.push("oa_cai", "SCAN", "oa.scan")[:2] == (200, "success")
    customer_id = identity("oa_openid#oa_cai")
    [scan] = scans_of(customer_id)
    assert (scan.outcome, scan.store_id) == ("FIRST_SCAN", "store-cd-chunxi")
    assert [e["channel"] for e in scan_events_of(customer_id)] == ["OA_SCAN"]


def test_the_same_push_twice_is_applied_once(world):
    store_scene("oa.twice", "store-cd-chunxi")
    first = world.push("oa_dee", "subscribe", "oa.twice", create_time=NOW + 500)
    again = world.push("oa_dee", "subscribe", "oa.twice", create_time=NOW + 500)    # WeChat's retry
    assert first[:2] == again[:2] == (200, "success")
    customer_id = identity("oa_openid#oa_dee")
    assert len(scans_of(customer_id)) == 1 and len(scan_events_of(customer_id)) == 1
    assert len(wiring.ownership().history(customer_id)) == 1
    assert world.official_account.calls == ["oa_dee"]
    # Another push of the same follower (another CreateTime) is another scan: a visit elsewhere.
    store_scene("oa.twice2", "store-wh-optics")
    assert world.push("oa_dee", "SCAN", "oa.twice2", create_time=NOW + 501)[:2] == (200, "success")
    assert sorted(s.outcome for s in scans_of(customer_id)) == ["FIRST_SCAN", "VISIT_RECORDED"]


@pytest.mark.parametrize("tamper", ["bad_token", "no_signature", "stale", "future"])
def test_a_push_that_does_not_verify_is_401_and_changes_nothing(world, tamper):
    from chalicelib.db.records import OaEventRecord, ScanRecord

    store_scene("oa.sig", "store-cd-chunxi")
    wall = time.time()
    query = {"bad_token": lambda: signed_query("not-the-token", "oa_eve", wall),
             "no_signature": lambda: "timestamp=1&nonce=2&openid=oa_eve",
             "stale": lambda: signed_query(wiring.oa_server_token(), "oa_eve", wall - 301),
             "future": lambda: signed_query(wiring.oa_server_token(), "oa_eve", wall + 301)}[tamper]()
    status, body, headers = world.push("oa_eve", "subscribe", "oa.sig", query=query)
    assert status == 401 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "INVALID_SIGNATURE"
    assert list(ScanRecord.scan()) == [] and list(OaEventRecord.scan()) == []       # test only
    assert world.official_account.calls == [] and identity("oa_openid#oa_eve") is None


@pytest.mark.parametrize("openid, event, scene, outcome", [
    ("oa_fay", "subscribe", "oa.none", "SCENE_NOT_FOUND"),
    ("ghost", "subscribe", "oa.known", "UNKNOWN_USER"),
    ("oa_nounion_gus", "SCAN", "oa.known", "NO_UNIONID"),
])
def test_unknown_scenes_and_followers_are_acknowledged_never_5xx(world, openid, event, scene, outcome):
    store_scene("oa.known", "store-cd-chunxi")
    assert world.push(openid, event, scene)[:2] == (200, "success")
    assert oa_event(f"{openid}#{world.create_time}").outcome == outcome
    if outcome == "SCENE_NOT_FOUND":
        [scan] = scans_of(identity(f"oa_openid#{openid}"))     # still recorded, as POST /v1/scans does
        assert (scan.scene, scan.outcome) == ("oa.none", "SCENE_NOT_FOUND")
    else:
        assert identity(f"oa_openid#{openid}") is None


@pytest.mark.parametrize("xml_body", [
    xml(EVENT_FIELDS + "<Event><![CDATA[unsubscribe]]></Event><EventKey><![CDATA[]]></EventKey>"),
    xml(EVENT_FIELDS + "<Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[https://x.test/]]></EventKey>"),
    xml(EVENT_FIELDS.replace("event", "text") + "<Content><![CDATA[hi]]></Content><MsgId>1</MsgId>"),
])
def test_other_events_and_messages_are_acknowledged(world, xml_body):
    from chalicelib.db.records import OaEventRecord

    assert world.push("oa_ann", body=xml_body)[:2] == (200, "success")
    assert list(OaEventRecord.scan()) == [] and world.official_account.calls == []   # test only


@pytest.mark.parametrize("body, content_type, status, code", [
    (b"<xml><FromUserName>oa_ann</xml>", "text/xml", 400, "MALFORMED_XML"),
    (XXE, "text/xml", 400, "MALFORMED_XML"),
    (BILLION_LAUGHS, "application/xml", 400, "MALFORMED_XML"),
    (b"<xml>" + b"x" * (oa.MAX_BODY_BYTES + 1) + b"</xml>", "text/xml", 413, "PAYLOAD_TOO_LARGE"),
    (xml("<FromUserName>oa_ann</FromUserName>"), "text/xml", 400, "VALIDATION_FAILED"),
    (b'{"FromUserName": "oa_ann"}', "application/json", 415, "UNSUPPORTED_MEDIA_TYPE"),
])
def test_malformed_oversized_or_hostile_bodies_are_4xx(world, body, content_type, status, code):
    answered, text, _ = world.push("oa_ann", body=body, content_type=content_type)
    assert answered == status and json.loads(text)["error"]["code"] == code


def test_wechats_url_verification_echoes_echostr_only_when_signed(world):
    query = signed_query(wiring.oa_server_token(), "x", time.time()).replace("&openid=x", "")
    response = world.client.http.get(f"/v1/callbacks/wechat-oa?{query}&echostr=5837397520286181467")
    assert (response.status_code, response.body) == (200, b"5837397520286181467")
    assert response.headers["Content-Type"].startswith("text/plain")
    forged = signed_query("not-the-token", "x", time.time())
    response = world.client.http.get(f"/v1/callbacks/wechat-oa?{forged}&echostr=5837397520286181467")
    assert response.status_code == 401 and json.loads(response.body)["error"]["code"] == "INVALID_SIGNATURE"
    response = world.client.http.get(f"/v1/callbacks/wechat-oa?{query}&echostr=%3Cscript%3E")
    assert response.status_code == 400


# --- the crash window ----------------------------------------------------------------

def test_wechat_unavailable_releases_the_claim_so_the_retry_applies_it(world):
    store_scene("oa.retry", "store-cd-chunxi")
    world.official_account.fail = 1
    status, body, _ = world.push("oa_hal", "subscribe", "oa.retry", create_time=NOW + 900)
    assert status == 503 and json.loads(body)["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert oa_event(f"oa_hal#{NOW + 900}") is None
    assert world.push("oa_hal", "subscribe", "oa.retry", create_time=NOW + 900)[:2] == (200, "success")
    assert [s.outcome for s in scans_of(identity("oa_openid#oa_hal"))] == ["FIRST_SCAN"]


def test_a_claim_whose_handler_died_is_a_duplicate_within_its_lease_and_taken_over_after(world, monkeypatch):
    from chalicelib.services import oa_events

    store_scene("oa.crash", "store-cd-chunxi")
    key, now = f"oa_ivy#{NOW + 950}", wiring.now()
    assert wiring.oa_events().claim(key, event="subscribe", scene="oa.crash", channel="OA_SUBSCRIBE", now=now,
                                    lease_s=oa_events.LEASE_S, retention_s=oa_events.RETENTION_S)
    # The handler that claimed it is gone. WeChat's retries, seconds later, change nothing:
    assert world.push("oa_ivy", "subscribe", "oa.crash", create_time=NOW + 950)[:2] == (200, "success")
    assert identity("oa_openid#oa_ivy") is None and oa_event(key).state == "CLAIMED"
    # A push of it after the lease takes the claim over and applies it.
    later = now + oa_events.LEASE_S + 1
    monkeypatch.setattr(wiring, "now", lambda: later)
    assert world.push("oa_ivy", "subscribe", "oa.crash", create_time=NOW + 950)[:2] == (200, "success")
    assert oa_event(key).state == "APPLIED"
    assert [s.outcome for s in scans_of(identity("oa_openid#oa_ivy"))] == ["FIRST_SCAN"]


def test_two_first_sights_of_one_person_make_one_customer(world):
    """A follow and a first mini-program login racing: whichever creates the customer,
    the other finds it by unionid."""
    from chalicelib.services.oa_events import customer_for_follower

    customers = wiring.customers()
    real_find = customers.find_by_identity
    calls = []

    def find_missing_once(identity_):
        calls.append(identity_)
        if len(calls) == 2:                 # the unionid lookup, just before it creates
            world.login("jo")               # ... the login wins the race
            return None
        return real_find(identity_)

    customers.find_by_identity = find_missing_once
    try:
        customer_id = customer_for_follower("oa_jo", customers=customers,
                                            official_account=world.official_account, now=wiring.now())
    finally:
        customers.find_by_identity = real_find
    assert customer_id == identity("unionid#u_jo") == identity("openid#o_jo") == identity("oa_openid#oa_jo")

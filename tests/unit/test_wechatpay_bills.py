"""WeChat Pay's bills through the adapter (chalicelib/wechat/bills.py) and the use case
(chalicelib/services/bills.py), against a fake WeChat that checks our request signatures,
signs its JSON answers with the local platform key (so the SDK verifies them for real) and
serves the bill files unsigned, as WeChat does."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import requests

from chalicelib.domain.bills import PAYMENT, REFUND, available_at
from chalicelib.wechat.bills import APPLIED, CREATING, NO_STATEMENT, BillClient, BillHashMismatch
from chalicelib.wechat.pay import ProviderRefused, ProviderUnavailable
from tests.wechatpay_notifications import sign

GATEWAY = "https://wechatpay.invalid"
SP_MCHID, SP_APPID = "1900000100", "wx5f0c0ffee5a1d001"
SUB_MCHID = "1900001001"
DAY = date(2025, 1, 1)
DOWNLOAD_PATH = ("/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO"
                 "&tartype=gzip")

HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
          "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
          "手续费,费率,订单金额,申请退款金额,费率备注")
ROWS = ("`2025-01-01 10:00:05,`wx5f0c0ffee5a1d001,`1900000100,`1900001001,`,`4200000001,`O1,`oU,`JSAPI,`SUCCESS,"
        "`OTHERS,`CNY,`19.90,`0.00,`0,`0,`0.00,`0.00,`,`,`Desk, oak,`store=st-1,`0.12000,`0.60%,`19.90,`0.00,`",
        "`2025-01-01 20:00:00,`wx5f0c0ffee5a1d001,`1900000100,`1900001001,`,`4200000001,`O1,`oU,`JSAPI,`REFUND,"
        "`OTHERS,`CNY,`0.00,`0.00,`503001,`O1-R1,`5.00,`0.00,`ORIGINAL,`SUCCESS,`Desk, oak,`,`-0.03000,`0.60%,"
        "`0.00,`5.00,`")
SUMMARY = ("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n"
           "`2,`19.90,`5.00,`0.00,`0.09000,`19.90,`5.00\n")
BILL = (HEADER + "\n" + "".join(r + "\n" for r in ROWS) + SUMMARY).encode()


class _Json:
    def __init__(self, status: int, text: str, headers: dict):
        self.status_code, self.text, self.headers = status, text, headers
        self.content = text.encode()


class _Stream:
    """What ``requests.get(..., stream=True)`` gives back for a file."""

    def __init__(self, status: int, body: bytes, chunk: int):
        self.status_code, self._body, self._chunk = status, body, chunk
        self.headers = {"Content-Type": "application/octet-stream"}
        self.chunks_read = 0

    def iter_content(self, chunk_size=1):
        for start in range(0, len(self._body), min(chunk_size, self._chunk)):
            self.chunks_read += 1
            yield self._body[start:start + min(chunk_size, self._chunk)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeWeChat:
    def __init__(self, folder: Path):
        from cryptography.hazmat.primitives import serialization

        self.platform_private_key = (folder / "platform_private_key.pem").read_text()
        self.public_key_id = (folder / "public_key_id").read_text().strip()
        self.merchant_public_key = serialization.load_pem_public_key((folder / "merchant_public_key.pem").read_bytes())
        self.applies: list = []          # (status, body, signed)
        self.files: list = []            # (status, bytes)
        self.sent: list = []             # (url, headers, stream, timeout)
        self.chunk = 1 << 16

    def apply_answers(self, status: int = 200, body: dict | None = None, signed: bool = True) -> None:
        self.applies.append((status, body, signed))

    def bill_is(self, content: bytes, *, gzipped: bool = True, hash_of: bytes | None = None, url: str | None = None,
                status: int = 200) -> None:
        self.apply_answers(200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(hash_of or content).hexdigest(),
                                 "download_url": url or GATEWAY + DOWNLOAD_PATH})
        self.files.append((status, gzip.compress(content) if gzipped else content))

    def get(self, url, **kwargs):
        assert kwargs["timeout"] is not None, "every call has a timeout"
        assert url.startswith(GATEWAY + "/v3/"), url
        path = url[len(GATEWAY):]
        self._check_our_signature(path, kwargs["headers"]["Authorization"])
        self.sent.append((url, dict(kwargs["headers"]), kwargs.get("stream", False), kwargs["timeout"]))
        if path.startswith("/v3/billdownload/"):
            status, content = self.files.pop(0)
            return _Stream(status, content, self.chunk)
        status, payload, signed = self.applies.pop(0)
        text = json.dumps(payload or {}, ensure_ascii=False)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if signed and 200 <= status < 300:
            ts, nonce = str(int(time.time())), secrets.token_hex(16)
            headers.update({"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                            "Wechatpay-Signature": sign(self.platform_private_key, ts, nonce, text.encode()),
                            "Wechatpay-Serial": self.public_key_id,
                            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"})
        return _Json(status, text, headers)

    def _check_our_signature(self, path, authorization):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        scheme, _, params = authorization.partition(" ")
        fields = {k: v.strip('"') for k, v in (item.split("=", 1) for item in params.split(","))}
        assert scheme == "WECHATPAY2-SHA256-RSA2048" and fields["mchid"] == SP_MCHID
        message = f"GET\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n\n".encode()
        self.merchant_public_key.verify(base64.b64decode(fields["signature"]), message, padding.PKCS1v15(),
                                        hashes.SHA256())


@pytest.fixture
def wechat(test_env, monkeypatch):
    fake = FakeWeChat(test_env / "wechatpay")
    monkeypatch.setattr(requests, "get", fake.get)
    return fake


@pytest.fixture
def tmp_bills(tmp_path):
    folder = tmp_path / "bills"
    folder.mkdir()
    return folder


@pytest.fixture
def client(wechat, test_env, tmp_bills):
    from chalicelib.wechat.keys import PayKeys
    from chalicelib.wechat.pay import WeChatPayClient

    read = lambda name: (test_env / "wechatpay" / name).read_text().strip()  # noqa: E731
    keys = PayKeys(merchant_private_key=read("merchant_private_key.pem"), merchant_serial_no=read("merchant_serial_no"),
                   platform_public_key=read("platform_public_key.pem"), public_key_id=read("public_key_id"),
                   apiv3_key=read("apiv3_key"))
    pay = WeChatPayClient(gateway=GATEWAY + "/", sp_mchid=SP_MCHID, sp_appid=SP_APPID, keys=keys, timeout_s=3)
    return BillClient(pay, tmp_dir=str(tmp_bills))


# --- the adapter

def test_a_trade_bill_is_applied_for_downloaded_from_exactly_its_url_verified_and_read(client, wechat, tmp_bills):
    wechat.bill_is(BILL)

    application = client.apply_trade_bill(DAY, "ALL", SUB_MCHID)
    assert application.status == APPLIED and application.hash_value == hashlib.sha1(BILL).hexdigest()
    with client.download(application) as bill:
        assert bill.gzipped and "".join(bill.lines()).encode() == BILL
        assert list(bill.lines()) == list(bill.lines())          # each call is a fresh pass
        path = Path(bill.path)
        assert path.parent == tmp_bills and path.exists()
    assert not path.exists(), "closing the bill deletes its temporary file"

    (apply_url, apply_headers, _, timeout), (download_url, download_headers, streamed, _) = wechat.sent
    assert apply_url == \
        GATEWAY + f"/v3/bill/tradebill?bill_date=2025-01-01&bill_type=ALL&tar_type=GZIP&sub_mchid={SUB_MCHID}"
    assert download_url == GATEWAY + DOWNLOAD_PATH and streamed, "the signed GET names exactly the returned path+query"
    assert download_headers["Wechatpay-Serial"] == wechat.public_key_id
    assert timeout == (2.0, 3)


def test_the_whole_sub_merchant_set_and_the_profit_sharing_bill_are_asked_for_by_their_own_paths(client, wechat):
    wechat.apply_answers(400, {"code": "NO_STATEMENT_EXIST", "message": "请求的账单文件不存在"})
    wechat.apply_answers(400, {"code": "NO_STATEMENT_EXIST", "message": "请求的账单文件不存在"})
    wechat.apply_answers(400, {"code": "NO_STATEMENT_EXIST", "message": "请求的账单文件不存在"})

    client.apply_trade_bill("2025-01-01", "REFUND")
    client.apply_profitsharing_bill(DAY)
    client.apply_profitsharing_bill(DAY, SUB_MCHID)

    assert [url[len(GATEWAY):] for url, *_ in wechat.sent] == [
        "/v3/bill/tradebill?bill_date=2025-01-01&bill_type=REFUND&tar_type=GZIP",
        "/v3/profitsharing/bills?bill_date=2025-01-01&tar_type=GZIP",
        f"/v3/profitsharing/bills?bill_date=2025-01-01&tar_type=GZIP&sub_mchid={SUB_MCHID}"]


@pytest.mark.parametrize("code, status", [("NO_STATEMENT_EXIST", NO_STATEMENT), ("STATEMENT_CREATING", CREATING)])
def test_no_bill_and_a_bill_being_made_are_answers_not_outages(client, wechat, code, status):
    wechat.apply_answers(400, {"code": code, "message": "账单"})

    application = client.apply_trade_bill(DAY)

    assert application.status == status and application.download_url is None
    with pytest.raises(ValueError):
        client.download(application)


def test_a_bill_whose_hash_does_not_match_is_refused_and_its_file_deleted(client, wechat, tmp_bills):
    wechat.bill_is(BILL, hash_of=BILL + b"x")

    with pytest.raises(BillHashMismatch) as refused:
        client.download(client.apply_trade_bill(DAY))

    assert refused.value.details["reason"] == "HASH_MISMATCH"
    assert list(tmp_bills.iterdir()) == []


def test_the_hash_is_over_the_decompressed_bytes_not_the_gzip(client, wechat):
    wechat.apply_answers(200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(gzip.compress(BILL)).hexdigest(),
                               "download_url": GATEWAY + DOWNLOAD_PATH})
    wechat.files.append((200, gzip.compress(BILL)))
    with pytest.raises(BillHashMismatch):
        client.download(client.apply_trade_bill(DAY))


def test_a_plain_uncompressed_bill_is_verified_and_read_too(client, wechat):
    wechat.bill_is(BILL, gzipped=False)

    with client.download(client.apply_trade_bill(DAY)) as bill:
        assert not bill.gzipped and "".join(bill.lines()).encode() == BILL


def test_a_file_that_claims_gzip_but_does_not_decompress_is_refused(client, wechat, tmp_bills):
    wechat.bill_is(BILL)
    wechat.files[0] = (200, gzip.compress(BILL)[:-20])

    with pytest.raises(BillHashMismatch) as refused:
        client.download(client.apply_trade_bill(DAY))
    assert refused.value.details["reason"] == "NOT_GZIP" and list(tmp_bills.iterdir()) == []


def test_a_big_bill_is_written_to_disk_chunk_by_chunk(client, wechat):
    big = (HEADER + "\n" + (ROWS[0] + "\n") * 20000).encode()
    wechat.chunk = 4096
    wechat.bill_is(big)

    with client.download(client.apply_trade_bill(DAY)) as bill:
        assert bill.size == len(gzip.compress(big)) and sum(1 for _ in bill.lines()) == 20001


def test_the_apply_answer_is_verified_like_every_other_call(client, wechat):
    wechat.apply_answers(200, {"hash_type": "SHA1", "hash_value": "0" * 40, "download_url": GATEWAY + DOWNLOAD_PATH},
                         signed=False)
    with pytest.raises(ProviderUnavailable):
        client.apply_trade_bill(DAY)
    assert len(wechat.sent) == 1, "nothing is downloaded on an unverified answer"


@pytest.mark.parametrize("body", [{"hash_type": "MD5", "hash_value": "0" * 40, "download_url": "/x"},
                                  {"hash_type": "SHA1", "hash_value": "not-a-hash", "download_url": "/x"},
                                  {"hash_type": "SHA1", "hash_value": "0" * 40}])
def test_an_apply_answer_without_a_url_or_a_sha1_is_no_answer(client, wechat, body):
    wechat.apply_answers(200, body)
    with pytest.raises(ProviderUnavailable):
        client.apply_trade_bill(DAY)


@pytest.mark.parametrize("status, code, error", [(500, "SYSTEM_ERROR", ProviderUnavailable),
                                                 (429, "FREQUENCY_LIMITED", ProviderUnavailable),
                                                 (400, "PARAM_ERROR", ProviderRefused)])
def test_other_refusals_to_apply_are_outages_or_refusals(client, wechat, status, code, error):
    wechat.apply_answers(status, {"code": code, "message": "..."})
    with pytest.raises(error):
        client.apply_trade_bill(DAY)


@pytest.mark.parametrize("status, error", [(500, ProviderUnavailable), (404, ProviderRefused)])
def test_a_failed_download_leaves_no_file(client, wechat, tmp_bills, status, error):
    wechat.bill_is(b'{"code": "RESOURCE_NOT_EXISTS", "message": "expired"}', gzipped=False, status=status)
    with pytest.raises(error):
        client.download(client.apply_trade_bill(DAY))
    assert list(tmp_bills.iterdir()) == []


def test_a_download_that_times_out_is_an_outage(client, wechat, monkeypatch, tmp_bills):
    wechat.bill_is(BILL)
    application = client.apply_trade_bill(DAY)
    monkeypatch.setattr(requests, "get", lambda *a, **k: (_ for _ in ()).throw(requests.ReadTimeout("slow")))
    with pytest.raises(ProviderUnavailable):
        client.download(application)
    assert list(tmp_bills.iterdir()) == []


def test_our_signature_never_goes_to_a_host_other_than_the_gateway(client, wechat):
    wechat.bill_is(BILL, url="https://elsewhere.example" + DOWNLOAD_PATH)

    with client.download(client.apply_trade_bill(DAY)) as bill:
        assert "".join(bill.lines()).encode() == BILL
    assert wechat.sent[-1][0] == GATEWAY + DOWNLOAD_PATH


@pytest.mark.parametrize("bill_date, sub_mchid", [("2025-1-1", None), ("2025-01-01T00:00", None), (None, None),
                                                  (DAY, "19000abc"), (DAY, "1900&x=1")])
def test_dates_and_sub_merchants_are_checked_before_anything_is_sent(client, wechat, bill_date, sub_mchid):
    with pytest.raises(ValueError):
        client.apply_trade_bill(bill_date, "ALL", sub_mchid)
    assert wechat.sent == []


# --- the use case

AFTER_TEN = available_at(DAY) + 60


@pytest.fixture
def alerts(dynamodb):
    from chalicelib.services import wiring

    return wiring.alerts()


def fetch(client, alerts, kind="ALL", now=AFTER_TEN, **kwargs):
    from chalicelib.services.bills import fetch_bill

    return fetch_bill(DAY, kind, bills=client, alerts=alerts, now=now, brand_id="brand-demo", **kwargs)


def bill_alerts(alerts) -> list:
    from chalicelib.db.records import AlertRecord

    return [a for a in AlertRecord.scan() if a.kind == "BILL_REFUSED"]


def test_a_ready_bill_gives_its_checked_rows_and_each_payments_fee(client, wechat, alerts, tmp_bills):
    from chalicelib.services.bills import READY, FeeLine

    wechat.bill_is(BILL)
    with fetch(client, alerts) as fetched:
        assert fetched.outcome == READY and fetched.hash_value == hashlib.sha1(BILL).hexdigest()
        assert fetched.totals.rows == 2 and fetched.totals.summary["手续费总金额"] == 9
        payment, refund = fetched.rows()
        assert (payment.kind, payment.settlement_total_fen, payment.fee_fen) == (PAYMENT, 1990, 12)
        assert (refund.kind, refund.refund_fen, refund.out_refund_no, refund.fee_fen) == (REFUND, 500, "O1-R1", -3)
        assert list(fetched.fees()) == [FeeLine(PAYMENT, "O1", "4200000001", "", 12),
                                        FeeLine(REFUND, "O1", "4200000001", "O1-R1", -3)]
    assert list(tmp_bills.iterdir()) == []
    assert bill_alerts(alerts) == []


def test_no_statement_is_an_empty_successful_day(client, wechat, alerts):
    from chalicelib.services.bills import EMPTY

    wechat.apply_answers(400, {"code": "NO_STATEMENT_EXIST", "message": "请求的账单文件不存在"})
    fetched = fetch(client, alerts, kind="PROFITSHARING")
    assert fetched.outcome == EMPTY and fetched.retry_at is None
    with pytest.raises(ValueError):
        fetched.rows()


def test_before_ten_the_day_after_nothing_is_asked_and_the_answer_is_come_back_at_ten(client, wechat, alerts):
    from chalicelib.services.bills import NOT_YET, TOO_EARLY

    fetched = fetch(client, alerts, now=available_at(DAY) - 1)
    assert (fetched.outcome, fetched.reason, fetched.retry_at) == (NOT_YET, TOO_EARLY, available_at(DAY))
    assert wechat.sent == []
    # the day itself, too
    assert fetch(client, alerts, now=datetime(2025, 1, 1, 15, tzinfo=timezone.utc).timestamp()).outcome == NOT_YET


def test_a_bill_still_being_made_is_asked_for_again_half_an_hour_later(client, wechat, alerts):
    from chalicelib.services.bills import NOT_YET, STATEMENT_CREATING

    wechat.apply_answers(400, {"code": "STATEMENT_CREATING", "message": "账单生成中"})
    fetched = fetch(client, alerts)
    assert (fetched.outcome, fetched.reason, fetched.retry_at) == (NOT_YET, STATEMENT_CREATING, AFTER_TEN + 1800)


def test_a_hash_mismatch_is_refused_with_one_alert_and_no_rows(client, wechat, alerts, tmp_bills):
    from chalicelib.services.bills import HASH_MISMATCH, REFUSED

    for _ in range(2):
        wechat.bill_is(BILL, hash_of=b"another file")
        fetched = fetch(client, alerts)
        assert (fetched.outcome, fetched.reason) == (REFUSED, HASH_MISMATCH)
        with pytest.raises(ValueError):
            fetched.rows()
    [alert] = bill_alerts(alerts)
    assert alert.alert_id == "BILL_REFUSED-2025-01-01-ALL" and alert.brand_id == "brand-demo"
    assert alert.detail["bill_date"] == "2025-01-01" and alert.detail["bill_kind"] == "ALL"
    assert alert.detail["reason"] == HASH_MISMATCH
    assert list(tmp_bills.iterdir()) == []


def test_a_bill_that_does_not_add_up_is_refused_whole_before_any_row_is_seen(client, wechat, alerts, tmp_bills):
    from chalicelib.services.bills import MALFORMED, REFUSED

    wechat.bill_is(BILL.replace(b"`2,`19.90,`5.00", b"`2,`19.91,`5.00"), gzipped=True)
    fetched = fetch(client, alerts, sub_mchid=SUB_MCHID)

    assert (fetched.outcome, fetched.reason) == (REFUSED, MALFORMED)
    [alert] = bill_alerts(alerts)
    assert alert.alert_id == f"BILL_REFUSED-2025-01-01-ALL-{SUB_MCHID}"
    assert alert.detail["column"] == "应结订单总金额" and alert.detail["line"] == 5
    assert "应结订单总金额" in alert.message
    assert list(tmp_bills.iterdir()) == []


def test_a_bill_that_is_not_utf8_is_refused(client, wechat, alerts):
    from chalicelib.services.bills import MALFORMED, REFUSED

    wechat.bill_is(BILL.replace("商品名称".encode(), "商品名称".encode("gbk")))
    fetched = fetch(client, alerts)
    assert (fetched.outcome, fetched.reason) == (REFUSED, MALFORMED)


def test_an_outage_is_raised_not_answered(client, wechat, alerts):
    wechat.apply_answers(500, {"code": "SYSTEM_ERROR", "message": "系统错误"})
    with pytest.raises(ProviderUnavailable):
        fetch(client, alerts)
    assert bill_alerts(alerts) == []


def test_fetch_bill_is_wired_lazily(test_env):
    from chalicelib.services import wiring

    assert isinstance(wiring.bills(), BillClient) and wiring.bills() is wiring.bills()

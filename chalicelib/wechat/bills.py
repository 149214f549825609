"""WeChat Pay's bills (wechatpay-v3.md §6 "Profit-sharing bill", §7 "Bills"): apply, download, verify.

1. Apply: a signed GET through the SDK (``trade_bill`` -> ``/v3/bill/tradebill?bill_date=&bill_type=
   &tar_type=GZIP[&sub_mchid=]``, ``profitsharing_bill`` -> ``/v3/profitsharing/bills?bill_date=
   &tar_type=GZIP[&sub_mchid=]``), sent and verified like every other call (``WeChatPayClient._call``:
   timeout, response signature, error mapping). Its two "no file" answers are results, not
   errors: 400 ``NO_STATEMENT_EXIST`` (nothing happened that day: final) and 400
   ``STATEMENT_CREATING`` (not generated yet: ask again in about 30 minutes).
2. Download, at once (the URL lives 30 s to 5 min): a signed GET on exactly the path and query
   of ``download_url``, sent to the configured gateway (our Authorization never goes to
   another host). The answer carries NO signature headers (§7): it is not handed to the SDK's
   verification but streamed to a temporary file, in chunks (memory does not grow with the file).
3. Verify: sha1 over the DECOMPRESSED bytes (gunzip streaming, or the plain bytes when the
   file is not gzip) must equal ``hash_value``; a mismatch (or a file that does not
   decompress) raises ``BillHashMismatch`` and the file is deleted.

Only then does the caller get a ``BillFile``: ``lines()`` is a second streaming pass over the
temporary file, decompressed and decoded (UTF-8), line by line; ``close()`` deletes the file.
"""
from __future__ import annotations

import os
import re
import time
import weakref
from dataclasses import dataclass
from datetime import date

from chalicelib.errors import StoreLinkError
from chalicelib.log import get_logger
from chalicelib.wechat.pay import _RETRYABLE_CODES, ProviderRefused, ProviderUnavailable

TRADE_BILL_TYPES = ("ALL", "SUCCESS", "REFUND")

# What applying for a bill can answer
APPLIED = "APPLIED"                          # a download_url and the file's hash
NO_STATEMENT = "NO_STATEMENT_EXIST"          # no trade / split that day: an empty day, final
CREATING = "STATEMENT_CREATING"              # not generated yet: ask again later (~30 min)

_CHUNK = 1 << 20
_SHA1 = re.compile(r"[0-9a-fA-F]{40}")
_SUB_MCHID = re.compile(r"[0-9]{1,32}")
_GZIP_MAGIC = b"\x1f\x8b"


class BillHashMismatch(StoreLinkError):
    """The downloaded bill is not the file WeChat Pay described (sha1 of its decompressed
    bytes differs from hash_value, or it does not decompress): nothing in it may be used."""
    status, code = 502, "BILL_HASH_MISMATCH"
    default_message = "WeChat Pay's bill file does not match its hash."


@dataclass(frozen=True)
class BillApplication:
    """WeChat Pay's answer to applying for one bill."""
    status: str                      # APPLIED, NO_STATEMENT or CREATING
    bill: str                        # "tradebill:ALL", "profitsharing", ... (for logs and errors)
    download_url: str | None = None
    hash_type: str | None = None     # SHA1
    hash_value: str | None = None


class BillFile:
    """A bill downloaded and verified: a temporary file, read again by ``lines()``."""

    def __init__(self, path: str, hash_value: str, gzipped: bool, size: int):
        self.path, self.hash_value, self.gzipped, self.size = path, hash_value, gzipped, size
        self._finalizer = weakref.finalize(self, _remove, path)   # deleted however the caller forgets it

    def lines(self):
        """The bill's text, line by line (each ending "\\n"; a line only ends at "\\n"), one
        streaming pass over the file. UnicodeDecodeError if it is not UTF-8."""
        import gzip
        import io

        raw = gzip.open(self.path, "rb") if self.gzipped else open(self.path, "rb")
        with io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as text:
            yield from text

    def close(self) -> None:
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class BillClient:
    """Bills through the WeChat Pay client's SDK, signing keys, gateway and timeouts."""

    def __init__(self, pay, *, tmp_dir: str | None = None):
        self._pay = pay                      # a chalicelib.wechat.pay.WeChatPayClient
        self._tmp_dir = tmp_dir
        self._log = get_logger("storelink.wechatpay")

    # -- 1. apply

    def apply_trade_bill(self, bill_date: date | str, bill_type: str = "ALL",
                         sub_mchid: str | None = None) -> BillApplication:
        if bill_type not in TRADE_BILL_TYPES:
            raise ValueError(f"bill_type is one of {', '.join(TRADE_BILL_TYPES)}, not {bill_type!r}")
        day, sub = _check(bill_date, sub_mchid)
        return self._apply(f"tradebill:{bill_type}", f"{day}:{bill_type}:{sub or '*'}",
                           lambda: self._pay._sdk.trade_bill(bill_date=day, bill_type=bill_type, tar_type="GZIP",
                                                             sub_mchid=sub))

    def apply_profitsharing_bill(self, bill_date: date | str, sub_mchid: str | None = None) -> BillApplication:
        day, sub = _check(bill_date, sub_mchid)
        return self._apply("profitsharing", f"{day}:{sub or '*'}", lambda: self._pay._sdk.profitsharing_bill(
            bill_date=day, tar_type="GZIP", sub_mchid=sub))

    def _apply(self, bill: str, key: str, send) -> BillApplication:
        api = f"apply_bill:{bill}"
        try:
            _, body = self._pay._call(api, key, send)
        except ProviderRefused as refused:
            if refused.provider_code in (NO_STATEMENT, CREATING):
                return BillApplication(refused.provider_code, bill)
            if refused.http_status >= 500 or refused.http_status == 429 or refused.provider_code in _RETRYABLE_CODES:
                raise ProviderUnavailable(api=api, provider_code=refused.provider_code,
                                          provider_status=refused.http_status) from refused
            raise                            # PARAM_ERROR (e.g. more than 3 months back), NO_AUTH, ...
        url, hash_type, hash_value = body.get("download_url"), body.get("hash_type"), body.get("hash_value")
        if not isinstance(url, str) or not url or hash_type != "SHA1" or not isinstance(hash_value, str) \
                or not _SHA1.fullmatch(hash_value):
            raise ProviderUnavailable("WeChat Pay's answer lacked a download URL or a SHA1 hash.", api=api)
        return BillApplication(APPLIED, bill, url, hash_type, hash_value.lower())

    # -- 2 and 3. download, verify

    def download(self, application: BillApplication) -> BillFile:
        """The applied-for file, downloaded to a temporary file and verified against its hash."""
        import tempfile

        if application.status != APPLIED:
            raise ValueError(f"nothing to download: the bill was answered {application.status}")
        fd, path = tempfile.mkstemp(prefix="storelink-bill-", dir=self._tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                size = self._stream_to(application, out)
            verified = verify_file(path, application.hash_value)
        except BaseException:
            _remove(path)
            raise
        self._log.info("bill downloaded", extra={"fields": {"bill": application.bill, "bytes": size,
                                                            "gzipped": verified}})
        return BillFile(path, application.hash_value, verified, size)

    def _stream_to(self, application: BillApplication, out) -> int:
        import requests
        from urllib.parse import urlsplit

        from wechatpayv3.utils import build_authorization

        api = f"download_bill:{application.bill}"
        core = self._pay._sdk._core
        parts = urlsplit(application.download_url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if not path.startswith("/"):
            raise ProviderUnavailable("WeChat Pay's download URL has no path.", api=api)
        gateway = core._gate_way
        if parts.netloc and f"{parts.scheme}://{parts.netloc}" != gateway:
            self._log.warning("bill download_url names another host: downloading from the gateway",
                              extra={"fields": {"api": api, "host": parts.netloc}})
        # Signed like any request (method, path with query, wall-clock time, nonce, empty body);
        # the answer is not signed, so the SDK (which would verify it) is not used to send it.
        headers = {"Accept": "application/json", "User-Agent": "storelink",
                   "Authorization": build_authorization(path, "GET", core._mchid, core._cert_serial_no,
                                                        core._private_key)}
        if core._public_key_id:
            headers["Wechatpay-Serial"] = core._public_key_id
        started, status, size, outcome = time.perf_counter(), None, 0, "ok"
        try:
            with requests.get(gateway + path, headers=headers, stream=True, timeout=core._timeout,
                              proxies=core._proxy) as response:
                status = response.status_code
                if status != 200:
                    outcome = "refused"
                    raise _download_error(api, status, next(response.iter_content(chunk_size=4096), b""))
                for chunk in response.iter_content(chunk_size=_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
        except requests.RequestException as exc:
            outcome = type(exc).__name__
            raise ProviderUnavailable(api=api) from exc
        finally:
            self._log.info("wechatpay call", extra={"fields": {
                "api": api, "key": application.bill, "status": status, "outcome": outcome, "bytes": size,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1)}})
        return size


def verify_file(path: str, hash_value: str) -> bool:
    """Check a downloaded bill: sha1 over its decompressed bytes (it is gzip when it starts
    with gzip's magic bytes, plain text otherwise) must be ``hash_value``. Returns whether it
    is gzip; raises ``BillHashMismatch``. One streaming pass, memory bounded by the chunk."""
    import gzip
    import hashlib
    import zlib

    with open(path, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
    digest = hashlib.sha1()
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as data:
            while chunk := data.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:   # gzip.BadGzipFile is an OSError
        raise BillHashMismatch("WeChat Pay's bill file does not decompress.", reason="NOT_GZIP",
                               error=str(exc)) from exc
    if digest.hexdigest() != hash_value.lower():
        raise BillHashMismatch(reason="HASH_MISMATCH", expected=hash_value.lower(), actual=digest.hexdigest())
    return gzipped


def _download_error(api: str, status: int, body: bytes) -> StoreLinkError:
    import json

    try:
        answer = json.loads(body.decode("utf-8") or "{}")
    except ValueError:
        answer = {}
    code = str(answer.get("code", "UNKNOWN")) if isinstance(answer, dict) else "UNKNOWN"
    if status >= 500 or status == 429 or code in _RETRYABLE_CODES:
        return ProviderUnavailable(api=api, provider_code=code, provider_status=status)
    # An expired URL (30 s to 5 min) or a refused signature: apply again for a fresh URL.
    return ProviderRefused(code, str(answer.get("message", "")) if isinstance(answer, dict) else "", status)


def _check(bill_date: date | str, sub_mchid: str | None) -> tuple[str, str | None]:
    day = bill_date.isoformat() if isinstance(bill_date, date) else bill_date
    try:
        date.fromisoformat(day)
    except (TypeError, ValueError):
        raise ValueError(f"bill_date must be a date or YYYY-MM-DD, not {bill_date!r}") from None
    if len(day) != 10:
        raise ValueError(f"bill_date must be YYYY-MM-DD, not {bill_date!r}")
    if sub_mchid is not None and not (isinstance(sub_mchid, str) and _SUB_MCHID.fullmatch(sub_mchid)):
        raise ValueError(f"sub_mchid must be digits, not {sub_mchid!r}")
    return day, sub_mchid

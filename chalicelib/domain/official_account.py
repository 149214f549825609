"""The official account's (公众号) server messages: WeChat's signature rule and its event XML.

WeChat signs every request to the OA server URL with the query parameters
``signature``, ``timestamp`` and ``nonce``: ``signature`` is the SHA-1 hex digest of
[server token, timestamp, nonce] sorted and joined. In plaintext mode that signature
does NOT cover the body; the timestamp window is what keeps an old signature from
being replayed for long (safe mode, which encrypts the body, is not used).

Event pushes are XML from outside: parsed with ``defusedxml`` and no DTD at all
(WeChat never sends one), so entity expansion (billion laughs) and external
entities (XXE) are refused before anything is expanded or fetched.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from chalicelib.errors import InvalidSignature, MalformedXml, PayloadTooLarge, ValidationFailed

# WeChat's own messages are well under 2 KiB; anything near this is not from WeChat.
MAX_BODY_BYTES = 16 * 1024
# How far the signed timestamp may be from the wall clock, either way.
MAX_SKEW_S = 300
SUBSCRIBE_PREFIX = "qrscene_"
# How an event was scanned: following through the code, or scanning it while following.
VIA_SUBSCRIBE, VIA_SCAN = "SUBSCRIBE", "SCAN"

_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_NONCE = re.compile(r"^[A-Za-z0-9]{1,64}$")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# An OA parametric QR carries a scene_id (a number) or a scene_str of 1 to 64 chars.
_SCENE = re.compile(r"^[\x21-\x7e]{1,64}$")
# echostr is WeChat's random number; echo back nothing else (it is reflected as-is).
_ECHOSTR = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def sign(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's OA server signature: sha1 of the three strings, sorted and joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode("utf-8")).hexdigest()


def check_signature(token: str, signature: object, timestamp: object, nonce: object, *, wall_now: float) -> None:
    """Raises InvalidSignature unless the query parameters were signed with ``token``
    within MAX_SKEW_S of the wall clock (signatures never follow the business clock)."""
    if not all(isinstance(v, str) and v for v in (signature, timestamp, nonce)):
        raise InvalidSignature("The signature, timestamp and nonce query parameters are required.",
                               reason="MISSING_SIGNATURE")
    if not _TIMESTAMP.match(timestamp) or not _NONCE.match(nonce):
        raise InvalidSignature(reason="BAD_SIGNATURE")
    if not hmac.compare_digest(sign(token, timestamp, nonce), signature.lower()):
        raise InvalidSignature(reason="BAD_SIGNATURE")
    if abs(wall_now - int(timestamp)) > MAX_SKEW_S:
        raise InvalidSignature("The signature's timestamp is more than 5 minutes from now.",
                               reason="STALE_TIMESTAMP")


def check_echostr(echostr: object) -> str:
    """The URL-verification challenge, echoed back once the signature holds."""
    if not isinstance(echostr, str) or not _ECHOSTR.match(echostr):
        raise ValidationFailed("'echostr' must be WeChat's challenge string.", field="echostr")
    return echostr


@dataclass(frozen=True)
class QrScan:
    """A scan of one of our parametric QR codes, as an event tells it."""
    scene: str
    via: str        # VIA_SUBSCRIBE (followed through the code) or VIA_SCAN (already following)


@dataclass(frozen=True)
class OaEvent:
    """One message pushed to the OA server URL (for a plain message, ``event`` is empty)."""
    to_user: str            # the official account's original id (gh_...)
    from_user: str          # the follower's openid under the OA appid (not the mini-program's)
    create_time: int        # WeChat's Unix seconds; with from_user, what retries share
    msg_type: str           # "event" for events
    event: str = ""         # subscribe | SCAN | unsubscribe | CLICK | ...
    event_key: str = ""
    ticket: str | None = None

    @property
    def dedup_key(self) -> str:
        """WeChat retries a push up to 3 times with the same FromUserName and CreateTime."""
        return f"{self.from_user}#{self.create_time}"

    def qr_scan(self) -> QrScan | None:
        """The QR scan this event reports, or None (a plain follow, another event, a message)."""
        if self.msg_type != "event":
            return None
        if self.event == "subscribe":
            if not self.event_key.startswith(SUBSCRIBE_PREFIX):
                return None     # followed by search, a shared card, ...: no code was scanned
            scene, via = self.event_key[len(SUBSCRIBE_PREFIX):], VIA_SUBSCRIBE
        elif self.event == "SCAN":
            scene, via = self.event_key, VIA_SCAN
        else:
            return None
        return QrScan(scene, via) if _SCENE.match(scene) else None


def parse_event(body: bytes) -> OaEvent:
    """The pushed XML as an OaEvent; MalformedXml, ValidationFailed or PayloadTooLarge otherwise."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The body must be at most {MAX_BODY_BYTES} bytes.", max_bytes=MAX_BODY_BYTES)
    if not body.strip():
        raise MalformedXml("The body is empty.")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedXml("The XML declares a DTD or entities, which WeChat never sends.",
                           reason=type(exc).__name__) from None
    except (ParseError, ValueError):
        raise MalformedXml() from None
    if root.tag != "xml":
        raise MalformedXml("The root element must be <xml>.")

    def text(name: str, required: bool = False) -> str:
        element = root.find(name)
        value = (element.text or "").strip() if element is not None else ""
        if required and not value:
            raise ValidationFailed(f"<{name}> is required.", field=name)
        return value

    from_user = text("FromUserName", required=True)
    if not _OPENID.match(from_user):
        raise ValidationFailed("<FromUserName> is not an openid.", field="FromUserName")
    create_time = text("CreateTime", required=True)
    if not _TIMESTAMP.match(create_time):
        raise ValidationFailed("<CreateTime> must be Unix seconds.", field="CreateTime")
    return OaEvent(to_user=text("ToUserName", required=True), from_user=from_user, create_time=int(create_time),
                   msg_type=text("MsgType", required=True), event=text("Event"), event_key=text("EventKey"),
                   ticket=text("Ticket") or None)

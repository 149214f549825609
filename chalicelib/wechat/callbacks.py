"""Verifying a WeChat Pay notification before anything believes it.

The checks the SDK leaves out come first (style.md, "traps"): the serial must be our
configured public-key id (an unknown serial would make the SDK fetch certificates
from WeChat inside the callback, so we refuse it without any outbound call), the
timestamp must be within 300 s of the wall clock either way, and the signature type
must be present and right. Then the SDK's own primitives verify the RSA signature
over the raw body and decrypt the AES-256-GCM resource.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_S = 300
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
_HEADERS = ("wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial",
            "wechatpay-signature-type")


class CallbackRefused(Exception):
    """Why a notification is not believed; ``reason`` is a stable code for the logs."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class VerifiedNotification:
    notification_id: str
    event_type: str
    summary: str
    create_time: str
    resource_type: str
    resource: dict   # the decrypted transaction / refund


def verify_notification(headers, raw_body: bytes, *, keys, wall_now: float) -> VerifiedNotification:
    """headers: any mapping with case-insensitive or lower-case keys."""
    from wechatpayv3.utils import aes_decrypt, load_public_key, rsa_verify

    h = {name.lower(): value for name, value in dict(headers).items()}
    missing = [name for name in _HEADERS if not h.get(name)]
    if missing:
        raise CallbackRefused("MISSING_HEADER", f"missing header(s): {', '.join(missing)}")
    if h["wechatpay-signature-type"] != SIGNATURE_TYPE:
        raise CallbackRefused("BAD_SIGNATURE_TYPE", "unsupported Wechatpay-Signature-Type")
    if h["wechatpay-serial"] != keys.public_key_id:
        raise CallbackRefused("UNKNOWN_SERIAL", "Wechatpay-Serial is not the configured public key id")
    if h["wechatpay-signature"].startswith(PROBE_PREFIX):
        # WeChat's probe: it expects merchants to refuse it, then sends the real one.
        raise CallbackRefused("SIGNATURE_PROBE", "signature probe refused")
    try:
        timestamp = int(h["wechatpay-timestamp"])
    except ValueError:
        raise CallbackRefused("BAD_TIMESTAMP", "Wechatpay-Timestamp is not a number") from None
    if abs(wall_now - timestamp) > MAX_SKEW_S:
        raise CallbackRefused("STALE_TIMESTAMP", "Wechatpay-Timestamp is more than 300 s from now")
    try:
        body_text = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise CallbackRefused("BAD_BODY", "body is not UTF-8") from None
    if not rsa_verify(h["wechatpay-timestamp"], h["wechatpay-nonce"], body_text, h["wechatpay-signature"],
                      load_public_key(keys.platform_public_key)):
        raise CallbackRefused("BAD_SIGNATURE", "signature does not verify")
    try:
        envelope = json.loads(body_text)
        resource = envelope["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise CallbackRefused("BAD_RESOURCE", "unsupported resource algorithm")
        plain = aes_decrypt(resource["nonce"], resource["ciphertext"], resource.get("associated_data") or "",
                            keys.apiv3_key)
    except CallbackRefused:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CallbackRefused("BAD_BODY", "body is not a WeChat Pay notification") from None
    if plain is None:
        raise CallbackRefused("UNDECRYPTABLE", "resource does not decrypt with the APIv3 key")
    try:
        decrypted = json.loads(plain)
    except ValueError:
        raise CallbackRefused("BAD_RESOURCE", "decrypted resource is not JSON") from None
    return VerifiedNotification(
        notification_id=str(envelope.get("id", "")), event_type=str(envelope.get("event_type", "")),
        summary=str(envelope.get("summary", "")), create_time=str(envelope.get("create_time", "")),
        resource_type=str(resource.get("original_type", "")), resource=decrypted)

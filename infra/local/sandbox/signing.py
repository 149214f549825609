"""WeChat Pay API v3 signatures and encryption, from WeChat's side of the wire.

Written by hand because no library serves WeChat Pay's *server* side: the SDKs
(wechatpayv3 included) sign requests and verify responses; here it is the other
way round — verify the merchant's request signature, sign responses and
notifications with the platform key, encrypt notification resources with the
APIv3 key (see ``wechatpay-v3.md`` §1-3).

Every timestamp here is WALL-clock time, as WeChat's are: the business clock
never enters a signature.
"""
from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"
TIMESTAMP_TOLERANCE_S = 300
_AUTH_ITEM = re.compile(r'\s*(\w+)="([^"]*)"\s*')
_AUTH_FIELDS = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
_NONCE_CHARS = string.ascii_letters + string.digits


@dataclass(frozen=True)
class SandboxPayKeys:
    """The key files of ``<data dir>/wechatpay/`` (names fixed by the contract)."""
    merchant_public_key: rsa.RSAPublicKey    # verifies the service provider's requests
    merchant_serial_no: str
    platform_private_key: rsa.RSAPrivateKey  # signs responses and notifications
    public_key_id: str                       # PUB_KEY_ID_…, sent as Wechatpay-Serial
    apiv3_key: str                           # 32 characters: AES-256-GCM key

    @classmethod
    def load(cls, data_dir: Path) -> "SandboxPayKeys":
        folder = Path(data_dir) / "wechatpay"

        def text(name: str) -> str:
            return (folder / name).read_text().strip()

        return cls(merchant_public_key=serialization.load_pem_public_key(text("merchant_public_key.pem").encode()),
                   merchant_serial_no=text("merchant_serial_no"),
                   platform_private_key=serialization.load_pem_private_key(
                       text("platform_private_key.pem").encode(), password=None),
                   public_key_id=text("public_key_id"), apiv3_key=text("apiv3_key"))

    def __repr__(self) -> str:  # never print key material
        return f"SandboxPayKeys(public_key_id={self.public_key_id!r}, merchant_serial_no={self.merchant_serial_no!r})"


class AuthorizationError(ValueError):
    """Why a request's Authorization header is refused (becomes 401 SIGN_ERROR)."""


def parse_authorization(header: str | None) -> dict[str, str]:
    """``WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",…`` -> its five fields."""
    if not header:
        raise AuthorizationError("Http头缺少Authorization (the Authorization header is missing)")
    scheme, _, rest = header.strip().partition(" ")
    if scheme != SCHEME:
        raise AuthorizationError(f"Authorization的认证类型必须是{SCHEME}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        match = _AUTH_ITEM.fullmatch(item)
        if not match or match.group(1) in fields:
            raise AuthorizationError("Authorization格式错误 (malformed Authorization header)")
        fields[match.group(1)] = match.group(2)
    missing = [name for name in _AUTH_FIELDS if not fields.get(name)]
    if missing:
        raise AuthorizationError(f"Authorization缺少参数 {', '.join(missing)}")
    if not re.fullmatch(r"\d{1,12}", fields["timestamp"]):
        raise AuthorizationError("Authorization中的timestamp格式错误")
    return fields


def request_message(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What a merchant signs: METHOD, path?query as sent, timestamp, nonce, body — each + \\n."""
    return f"{method}\n{target}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat signs on a response or notification: timestamp, nonce, body — each + \\n."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def rsa_sign(private_key, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_key, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_request(keys: SandboxPayKeys, sp_mchid: str, method: str, target: str, body: bytes,
                   authorization: str | None, wall_now: float) -> dict[str, str]:
    """Checks a merchant request as WeChat does; returns the Authorization fields or
    raises AuthorizationError saying why it is refused."""
    fields = parse_authorization(authorization)
    if fields["serial_no"] != keys.merchant_serial_no:
        raise AuthorizationError("商户证书序列号有误 (unknown serial_no): 请使用签名私钥匹配的证书序列号")
    if fields["mchid"] != sp_mchid:
        raise AuthorizationError("商户号与证书不匹配 (mchid does not own this serial_no)")
    if abs(wall_now - int(fields["timestamp"])) > TIMESTAMP_TOLERANCE_S:
        raise AuthorizationError("Http头Authorization中的timestamp与发起请求的时间不得超过5分钟")
    message = request_message(method, target, fields["timestamp"], fields["nonce_str"], body)
    if not rsa_verify(keys.merchant_public_key, message, fields["signature"]):
        raise AuthorizationError("签名错误 (signature does not match METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n)")
    return fields


@functools.lru_cache(maxsize=1)
def wrong_key() -> rsa.RSAPrivateKey:
    """A key nobody trusts, for the fault ``response_bad_signature``."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed_headers(keys: SandboxPayKeys, body: bytes, wall_now: float, *, bad_signature: bool = False) -> dict:
    """The Wechatpay-* headers WeChat puts on every response and notification."""
    timestamp, nonce = str(int(wall_now)), secrets.token_hex(16)
    key = wrong_key() if bad_signature else keys.platform_private_key
    return {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_sign(key, response_message(timestamp, nonce, body)),
            "Wechatpay-Serial": keys.public_key_id, "Wechatpay-Signature-Type": SCHEME}


def encrypt_resource(apiv3_key: str, resource: dict, associated_data: str, original_type: str) -> dict:
    """A notification's ``resource``: the JSON encrypted with AEAD_AES_256_GCM under the
    APIv3 key, a 12-character nonce, the associated data as AAD (tag appended)."""
    nonce = "".join(secrets.choice(_NONCE_CHARS) for _ in range(12))
    plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ciphertext).decode(),
            "nonce": nonce, "associated_data": associated_data, "original_type": original_type}

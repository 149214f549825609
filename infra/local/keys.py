"""The local stage's secrets and WeChat Pay keys, generated once into the data folder.

File names under ``wechatpay/`` are fixed by the contract: outside tests read them
to sign callbacks the API must accept and to call the sandbox as the merchant.
Nothing here is ever committed (``.local/`` is git-ignored).
"""
from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

WECHATPAY_DIR = "wechatpay"
SECRETS_DIR = "secrets"


def _write_once(path: Path, content: str | bytes) -> bool:
    if path.exists() and path.stat().st_size > 0:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return True


def _rsa_pair() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def ensure_local_keys(data_dir: Path) -> list[str]:
    """Create whatever is missing; returns the files it wrote (relative names)."""
    data_dir = Path(data_dir)
    written: list[str] = []

    def put(relative: str, content) -> None:
        if _write_once(data_dir / relative, content() if callable(content) else content):
            written.append(relative)

    put(f"{SECRETS_DIR}/token_signing_key", lambda: secrets.token_urlsafe(48))
    put(f"{SECRETS_DIR}/miniprogram_appsecret", lambda: secrets.token_hex(16))
    put(f"{SECRETS_DIR}/oa_appsecret", lambda: secrets.token_hex(16))
    # WeChat's OA server token is 3 to 32 letters or digits; the sandbox signs pushes with it.
    put(f"{SECRETS_DIR}/oa_server_token", lambda: secrets.token_hex(16))

    pay = data_dir / WECHATPAY_DIR
    if not (pay / "platform_private_key.pem").exists():
        private, public = _rsa_pair()
        _write_once(pay / "platform_public_key.pem", public)
        put(f"{WECHATPAY_DIR}/platform_private_key.pem", private)
        written.append(f"{WECHATPAY_DIR}/platform_public_key.pem")
    put(f"{WECHATPAY_DIR}/public_key_id",
        lambda: "PUB_KEY_ID_" + "".join(secrets.choice(string.digits) for _ in range(28)))
    alphabet = string.ascii_letters + string.digits
    put(f"{WECHATPAY_DIR}/apiv3_key", lambda: "".join(secrets.choice(alphabet) for _ in range(32)))
    if not (pay / "merchant_private_key.pem").exists():
        private, public = _rsa_pair()
        _write_once(pay / "merchant_public_key.pem", public)
        put(f"{WECHATPAY_DIR}/merchant_private_key.pem", private)
        written.append(f"{WECHATPAY_DIR}/merchant_public_key.pem")
    put(f"{WECHATPAY_DIR}/merchant_serial_no", lambda: secrets.token_hex(20).upper())
    return written

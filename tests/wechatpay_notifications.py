"""Building WeChat Pay notifications the way WeChat does, for tests: the resource
AES-256-GCM-encrypted with the APIv3 key, the body signed with the platform key."""
from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path


def encrypt_resource(resource: dict, apiv3_key: str, associated_data: str = "transaction") -> dict:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_hex(6)  # WeChat's nonces are 12 characters
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(),
                                                    associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ciphertext).decode(),
            "nonce": nonce, "associated_data": associated_data, "original_type": associated_data}


def sign(private_key_pem: str, timestamp: str, nonce: str, body: bytes) -> str:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


class NotificationFactory:
    def __init__(self, data_dir: Path):
        folder = Path(data_dir) / "wechatpay"
        self.private_key = (folder / "platform_private_key.pem").read_text()
        self.public_key_id = (folder / "public_key_id").read_text().strip()
        self.apiv3_key = (folder / "apiv3_key").read_text().strip()

    def build(self, resource: dict, event_type: str = "TRANSACTION.SUCCESS", *, apiv3_key: str | None = None,
              timestamp: int | None = None) -> tuple[dict, bytes]:
        envelope = {"id": "EV-" + secrets.token_hex(8), "create_time": "2026-11-23T10:00:00+08:00",
                    "event_type": event_type, "resource_type": "encrypt-resource", "summary": "支付成功",
                    "resource": encrypt_resource(resource, apiv3_key or self.apiv3_key)}
        body = json.dumps(envelope, ensure_ascii=False).encode()
        ts, nonce = str(timestamp if timestamp is not None else int(time.time())), secrets.token_hex(16)
        headers = {"Content-Type": "application/json", "Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                   "Wechatpay-Signature": sign(self.private_key, ts, nonce, body),
                   "Wechatpay-Serial": self.public_key_id,
                   "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}
        return headers, body

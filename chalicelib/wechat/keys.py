"""The WeChat Pay keys of this stage.

Local stage: the files the stack generated under ``<data dir>/wechatpay/`` (names fixed
by the contract). AWS: SSM Parameter Store SecureStrings ``/storelink/<stage>/wechatpay_*``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class PayKeys:
    merchant_private_key: str   # PEM: signs our requests (service provider's API key)
    merchant_serial_no: str
    platform_public_key: str    # PEM: WeChat Pay public key, verifies responses and callbacks
    public_key_id: str          # PUB_KEY_ID_…: the only serial we accept
    apiv3_key: str              # 32 characters: decrypts callback resources

    def __repr__(self) -> str:  # never print key material
        return f"PayKeys(public_key_id={self.public_key_id!r}, merchant_serial_no={self.merchant_serial_no!r})"


_FILES = {"merchant_private_key": "merchant_private_key.pem", "merchant_serial_no": "merchant_serial_no",
          "platform_public_key": "platform_public_key.pem", "public_key_id": "public_key_id",
          "apiv3_key": "apiv3_key"}


@functools.lru_cache(maxsize=1)
def pay_keys() -> PayKeys:
    from chalicelib.config import ConfigurationError, settings
    from chalicelib.secrets import get_secret

    s = settings()
    values = {}
    for field, file_name in _FILES.items():
        if s.is_local:
            path = s.data_dir / "wechatpay" / file_name
            try:
                values[field] = path.read_text().strip()
            except FileNotFoundError as exc:
                raise ConfigurationError(f"{path} is missing: start the stack once to generate it") from exc
        else:
            values[field] = get_secret(f"wechatpay_{field}")
    return PayKeys(**values)

"""Where secrets come from: files in the local stack's data folder, SSM Parameter
Store (SecureString, ``/storelink/<stage>/<name>``) in AWS. Read once per process.
"""
from __future__ import annotations

import functools

from chalicelib.config import ConfigurationError, settings

LOCAL_SECRETS_DIR = "secrets"
TOKEN_SIGNING_KEY = "token_signing_key"
MINIPROGRAM_APPSECRET = "miniprogram_appsecret"
OA_APPSECRET = "oa_appsecret"            # the official account's own AppSecret
OA_SERVER_TOKEN = "oa_server_token"      # the token WeChat signs pushes to the OA server URL with


@functools.lru_cache(maxsize=16)
def get_secret(name: str) -> str:
    s = settings()
    if s.is_local:
        if s.data_dir is None:
            raise ConfigurationError("the local stage needs STORELINK_DATA_DIR")
        path = s.data_dir / LOCAL_SECRETS_DIR / name
        try:
            value = path.read_text().strip()
        except FileNotFoundError as exc:
            raise ConfigurationError(
                f"secret {name} is missing at {path}: start the stack once to generate it") from exc
    else:
        import boto3  # imported here: only AWS stages read SSM, and only once

        ssm = boto3.client("ssm", region_name=s.region)
        value = ssm.get_parameter(Name=f"/storelink/{s.stage}/{name}", WithDecryption=True)[
            "Parameter"]["Value"].strip()
    if not value:
        raise ConfigurationError(f"secret {name} is empty")
    return value

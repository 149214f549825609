"""Settings, read once per process and typed.

Read lazily (through ``settings()``), never at import: ``chalice.test.Client``
applies the stage's environment variables only while a request runs, and a
Lambda cold start should not pay for settings a handler never reads.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

LOCAL_STAGES = ("local", "test")


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed: the process cannot serve."""


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_prefix: str
    # DynamoDB Local's URL in the local stage; None in AWS.
    dynamodb_endpoint: str | None
    # Base URLs of WeChat's mini-program/official-account API and of WeChat Pay;
    # the local stage points both at the sandbox.
    wechat_api_base: str
    wechatpay_api_base: str
    sp_appid: str
    sp_mchid: str
    brand_mchid: str
    # Folder of the local stack's data (keys, secrets, the business clock);
    # None in AWS, where secrets come from SSM Parameter Store.
    data_dir: Path | None
    log_level: str
    wechat_timeout_s: float
    # Where WeChat Pay delivers notifications (our public /v1/callbacks/wechatpay)
    notify_url: str
    # Days after shipping when an order counts as received (WeChat's own is 10)
    auto_receipt_days: int = 10
    # Promoters: AUTO approval or BRAND approval; how a share code binds (attribution rules)
    promoter_approval: str = "AUTO"
    promoter_binding_rule: str = "FIRST_TOUCH"
    # A bound customer scanning another store moves to it (brands that want it; off by default)
    rebind_on_scan: bool = False
    # The official account's appid (its own, not the mini-program's); None: no official account
    oa_appid: str | None = None
    # The full legal name of the brand's merchant account (brand_mchid): WeChat Pay requires it
    # to add that account as a profit-sharing receiver; None: splits cannot start (alerted)
    brand_legal_name: str | None = None
    # The brand whose mall this deployment is (the one whose routing settings the
    # route-traffic job applies); None: the default routing settings
    brand_id: str | None = None
    # The S3 bucket of the nightly reconciliation's CSV reports (M13); None: files under
    # <data dir>/reports (the local stage)
    reports_bucket: str | None = None

    @property
    def is_local(self) -> bool:
        return self.stage in LOCAL_STAGES

    def table_name(self, short_name: str) -> str:
        return f"{self.table_prefix}{short_name}"


def _require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def _days(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default)).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 90:
        raise ConfigurationError(f"{name} must be a whole number of days from 1 to 90")
    return int(raw)


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    stage = os.environ.get("STORELINK_STAGE", "local").strip() or "local"
    data_dir_raw = os.environ.get("STORELINK_DATA_DIR", "").strip()
    if stage in LOCAL_STAGES and not data_dir_raw:
        data_dir_raw = ".local"
    data_dir = Path(data_dir_raw).resolve() if data_dir_raw else None
    endpoint = os.environ.get("DYNAMODB_ENDPOINT", "").strip() or None
    if stage == "local" and endpoint is None:
        endpoint = "http://127.0.0.1:8001"
    try:
        timeout = float(os.environ.get("WECHAT_TIMEOUT_S", "4"))
    except ValueError as exc:
        raise ConfigurationError("WECHAT_TIMEOUT_S must be a number of seconds") from exc
    return Settings(
        stage=stage,
        region=(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                or "cn-north-1"),
        table_prefix=os.environ.get("STORELINK_TABLE_PREFIX", f"storelink-{stage}-"),
        dynamodb_endpoint=endpoint,
        wechat_api_base=os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com").rstrip("/"),
        wechatpay_api_base=os.environ.get(
            "WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com").rstrip("/"),
        sp_appid=_require("SP_APPID"),
        sp_mchid=_require("SP_MCHID"),
        brand_mchid=_require("BRAND_MCHID"),
        data_dir=data_dir,
        log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        wechat_timeout_s=timeout,
        auto_receipt_days=_days("AUTO_RECEIPT_DAYS", 10),
        promoter_approval=_choice("PROMOTER_APPROVAL", "AUTO", ("AUTO", "BRAND")),
        promoter_binding_rule=_choice("PROMOTER_BINDING_RULE", "FIRST_TOUCH",
                                      ("FIRST_TOUCH", "NEW_CUSTOMERS_ONLY", "LAST_TOUCH")),
        rebind_on_scan=_flag("REBIND_ON_SCAN"),
        oa_appid=os.environ.get("OA_APPID", "").strip() or None,
        brand_legal_name=os.environ.get("BRAND_LEGAL_NAME", "").strip() or None,
        brand_id=os.environ.get("BRAND_ID", "").strip() or None,
        reports_bucket=os.environ.get("REPORTS_BUCKET", "").strip() or None,
        notify_url=os.environ.get("WECHATPAY_NOTIFY_URL") or (
            os.environ.get("STORELINK_API_URL", "http://127.0.0.1:8000").rstrip("/") + "/v1/callbacks/wechatpay"),
    )


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().upper() or default
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}")
    return value


def _flag(name: str) -> bool:
    value = os.environ.get(name, "false").strip().lower()
    if value not in ("true", "false", "1", "0", ""):
        raise ConfigurationError(f"{name} must be true or false")
    return value in ("true", "1")


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    settings.cache_clear()

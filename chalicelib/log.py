"""Structured JSON logs, configured once.

Hand-written rather than Powertools' Logger: it is twenty lines on the standard
library and keeps Powertools' import time off every cold start. Callers pass
fields through ``extra={"fields": {...}}``; anything whose key looks secret is
masked here as a last line of defence (the first is never logging it).
"""
from __future__ import annotations

import json
import logging
import sys
import time

_SECRET_KEYS = ("session_key", "secret", "token", "password", "authorization", "apiv3", "private")
_configured = False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(mask_secrets(fields))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def mask_secrets(fields: dict) -> dict:
    return {k: ("***" if any(s in k.lower() for s in _SECRET_KEYS) else v) for k, v in fields.items()}


def mask_phone(phone: str) -> str:
    """138****5678: enough to recognise, not enough to call."""
    digits = phone or ""
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"


def get_logger(name: str = "storelink") -> logging.Logger:
    global _configured
    if not _configured:
        root = logging.getLogger("storelink")
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.handlers[:] = [handler]
        root.propagate = False
        from chalicelib.config import ConfigurationError, settings

        try:
            root.setLevel(settings().log_level)
        except (ConfigurationError, ValueError):
            root.setLevel("INFO")
        _configured = True
    return logging.getLogger(name if name.startswith("storelink") else f"storelink.{name}")

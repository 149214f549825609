"""Handlers found by name and imported only when their first event arrives, so a cold
start pays for none of them (used by the notification and the outbox dispatchers)."""
from __future__ import annotations

import importlib


def find_handler(key, overrides: dict, defaults: dict[str, tuple[str, str]]):
    """overrides[key] (tests put fakes there), else the (module, name) in defaults, else None."""
    if key in overrides:
        return overrides[key]
    if key in defaults:
        module, name = defaults[key]
        return getattr(importlib.import_module(module), name)
    return None

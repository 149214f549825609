"""The environment every local process runs with.

The stage ``local`` variables come from ``.chalice/config.json``; the ports and
the data folder are the stack's own (a test stack picks free ports and a temporary
folder), so they are set here and win over the file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StackPorts:
    api: int = 8000
    dynamodb: int = 8001
    sandbox: int = 8002


def stage_variables(stage: str = "local") -> dict[str, str]:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def local_environment(data_dir: Path, ports: StackPorts = StackPorts(),
                      table_prefix: str | None = None) -> dict[str, str]:
    """os.environ plus what a local process of this stack needs."""
    env = dict(os.environ)
    env.update(stage_variables("local"))
    env.update({
        "STORELINK_DATA_DIR": str(Path(data_dir).resolve()),
        "DYNAMODB_ENDPOINT": f"http://127.0.0.1:{ports.dynamodb}",
        "WECHAT_API_BASE": f"http://127.0.0.1:{ports.sandbox}",
        "WECHATPAY_API_BASE": f"http://127.0.0.1:{ports.sandbox}",
        "STORELINK_API_URL": f"http://127.0.0.1:{ports.api}",
        # DynamoDB Local accepts any credentials; botocore insists on having some,
        # and must never pick up a developer's real ones for a local table.
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "",
        "AWS_PROFILE": "",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.pop("AWS_SESSION_TOKEN")
    env.pop("AWS_PROFILE")
    if table_prefix:
        env["STORELINK_TABLE_PREFIX"] = table_prefix
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env

"""The stack as a person runs it: a foreground command that prints where each part
listens, writes stack.json, answers ./storelink, and stops everything on Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.local.environment import PROJECT_DIR
from infra.local.processes import pid_alive
from infra.local.stack import free_port
from tests.integration.conftest import http, login

pytestmark = pytest.mark.integration


def run_cli(data_dir, *args):
    return subprocess.run([str(PROJECT_DIR / "storelink"), "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=120)


def test_the_stack_command_end_to_end(tmp_path):
    ports = [free_port() for _ in range(3)]
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.stack", "--data-dir", str(tmp_path), "--api-port", str(ports[0]),
         "--dynamodb-port", str(ports[1]), "--sandbox-port", str(ports[2])],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stack_file = Path(tmp_path) / "stack.json"
    try:
        deadline = time.monotonic() + 120
        while not stack_file.exists():
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.2)
        info = json.loads(stack_file.read_text())
        assert info["api_url"] == f"http://127.0.0.1:{ports[0]}"
        assert info["dynamodb_url"] == f"http://127.0.0.1:{ports[1]}"
        assert info["sandbox_url"] == f"http://127.0.0.1:{ports[2]}"
        assert {"sp_mchid", "sp_appid", "brand_mchid"} <= set(info)
        assert len(info["dealers"]) == 3
        assert sum(len(d["store_ids"]) for d in info["dealers"]) == 10
        assert all(d["sub_mchid"] for d in info["dealers"])
        keys = Path(tmp_path) / "wechatpay"
        for name in ("platform_private_key.pem", "platform_public_key.pem", "public_key_id", "apiv3_key",
                     "merchant_private_key.pem", "merchant_public_key.pem", "merchant_serial_no"):
            assert (keys / name).stat().st_size > 0, name
        assert len((keys / "apiv3_key").read_text()) == 32
        assert (keys / "public_key_id").read_text().startswith("PUB_KEY_ID_")

        token = login(info["api_url"], "sandbox-alice").json()["token"]
        moved = run_cli(tmp_path, "clock", "--advance", "8d")
        assert moved.returncode == 0, moved.stderr
        assert json.loads(moved.stdout)["offset_s"] == 8 * 86400
        assert http("GET", f"{info['api_url']}/v1/me",
                    headers={"Authorization": f"Bearer {token}"}).status == 401
        office = run_cli(tmp_path, "token", "--role", "dealer", "--tenant", "dealer-shu")
        assert office.returncode == 0 and office.stdout.count(".") == 2
        assert run_cli(tmp_path, "token", "--role", "root", "--tenant", "x").returncode == 2
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    for part in ("API", "DynamoDB Local", "WeChat sandbox"):
        assert part in output
    assert all(not pid_alive(pid) for pid in info["pids"].values() if pid != process.pid)
    assert not stack_file.exists()
    assert "stopped." in output

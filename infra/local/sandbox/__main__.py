"""python -m infra.local.sandbox --port 8002 --data-dir .local"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from chalicelib.clock import CLOCK_FILE_NAME, BusinessClock
from infra.local.sandbox.bills import Bills
from infra.local.sandbox.controls import Controls
from infra.local.sandbox.due import DueWork
from infra.local.sandbox.faults import Faults
from infra.local.sandbox.http import Reply, Router, serve
from infra.local.sandbox.merchants import Merchants
from infra.local.sandbox.miniprogram import MiniProgramApis
from infra.local.sandbox.official_account import OfficialAccountApis
from infra.local.sandbox.notify import Notifier
from infra.local.sandbox.pay import Payments
from infra.local.sandbox.profitsharing import ProfitSharing
from infra.local.sandbox.refunds import Refunds
from infra.local.sandbox.requests_log import RequestLog
from infra.local.sandbox.returns import ProfitSharingReturns
from infra.local.sandbox.shipping import ShippingApis
from infra.local.sandbox.signing import SandboxPayKeys
from infra.local.sandbox.state import SandboxState
from infra.local.sandbox.v3 import V3Gateway


@dataclass
class Sandbox:
    server: object
    controls: Controls
    due_work: DueWork


def _scheduler_tick(data_dir: Path):
    def tick_local_scheduler() -> None:
        """Let the local scheduler run due schedules and drain the outbox; no-op when none runs."""
        from infra.local.scheduler import request_tick

        request_tick(data_dir, timeout_s=300)

    return tick_local_scheduler


def _unknown_control(request, allowed) -> Reply:
    if allowed:
        return Reply.error(405, "METHOD_NOT_ALLOWED", f"use {'/'.join(sorted(set(allowed)))}")
    return Reply.error(404, "NOT_FOUND", f"sandbox: no control at {request.path}")


def build(data_dir: Path, host: str, port: int) -> Sandbox:
    data_dir = data_dir.resolve()
    clock = BusinessClock(data_dir / CLOCK_FILE_NAME)
    state = SandboxState(data_dir / "sandbox" / "sandbox.db")
    appid = os.environ.get("SP_APPID") or "wx5f0c0ffee5a1d001"
    sp_mchid = os.environ.get("SP_MCHID") or "1900000100"
    brand_mchid = os.environ.get("BRAND_MCHID") or "1900000200"
    apps = {appid: (data_dir / "secrets" / "miniprogram_appsecret").read_text().strip()}
    # The official account: its own appid and secret, and the token it signs pushes with.
    oa_appid = os.environ.get("OA_APPID") or "wx5f0c0ffee5a1d0a0"
    apps[oa_appid] = (data_dir / "secrets" / "oa_appsecret").read_text().strip()
    oa_server_token = (data_dir / "secrets" / "oa_server_token").read_text().strip()
    api_url = os.environ.get("STORELINK_API_URL") or "http://127.0.0.1:8000"
    keys = SandboxPayKeys.load(data_dir)

    faults = Faults(state, clock)
    merchants = Merchants(state, clock, brand_mchid)
    request_log = RequestLog(state)
    notifier = Notifier(state, clock, keys, faults)
    gateway = V3Gateway(keys, sp_mchid, faults)
    payments = Payments(state, clock, merchants, notifier, request_log, sp_mchid, appid)
    refunds = Refunds(state, clock, payments, merchants, notifier, request_log, faults)
    profitsharing = ProfitSharing(state, clock, payments, merchants, request_log, faults, keys, appid)
    # Refunds finish before settlement: an order refunded in full by its auto-confirm time is not settled.
    due_work = DueWork([("expire unpaid orders", payments.expire_due),
                        ("finish refunds", refunds.complete_due),
                        ("settle received orders", payments.settle_due),
                        ("finish profit-sharing orders", profitsharing.finish_due),
                        ("unfreeze 30 days after payment", profitsharing.unfreeze_due),
                        ("deliver notifications", notifier.deliver_due)])
    controls = Controls(clock, due_work_hooks=[due_work.run, _scheduler_tick(data_dir)])

    router = Router()
    controls.routes(router)
    miniprogram = MiniProgramApis(state, clock, apps)
    miniprogram.routes(router)
    ShippingApis(state, clock, payments, miniprogram.check_access_token, sp_mchid).routes(router)
    OfficialAccountApis(state, clock, miniprogram.check_access_token, oa_appid, oa_server_token,
                        api_url).routes(router)
    payments.routes(router, gateway)
    refunds.routes(router, gateway)
    profitsharing.routes(router, gateway)
    ProfitSharingReturns(state, clock, profitsharing, merchants, request_log).routes(router, gateway)
    Bills(state, clock, payments, refunds, profitsharing, merchants, faults, keys, sp_mchid, appid).routes(
        router, gateway)
    merchants.routes(router)
    request_log.routes(router)
    faults.routes(router)
    notifier.routes(router)
    router.fallback("/v3/", gateway.unknown_path)
    router.fallback("/sandbox/", _unknown_control)
    notifier.recover()
    return Sandbox(serve(router, host, port), controls, due_work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The local WeChat sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("STORELINK_DATA_DIR", ".local")))
    args = parser.parse_args(argv)
    sandbox = build(args.data_dir, args.host, args.port)
    sandbox.due_work.start_background(interval_s=1.0)
    print(f"WeChat sandbox listening on http://{args.host}:{args.port}", flush=True)
    try:
        sandbox.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.due_work.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

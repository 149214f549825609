"""./storelink: the local stage's command line.

    ./storelink token --role brand|dealer|store --tenant <id>
    ./storelink clock [--advance 90s|2h|8d]
    ./storelink job <name> [--date YYYY-MM-DD]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from infra.local.environment import PROJECT_DIR
from infra.local.tokens import mint_backoffice_token

TENANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The jobs that read {"date": "YYYY-MM-DD"} from their event's detail (the day to work
# on instead of their default one); --date is refused for the others.
DATED_JOBS = ("check-ledgers", "reconcile")


def _data_dir(args) -> Path:
    return Path(args.data_dir or os.environ.get("STORELINK_DATA_DIR") or PROJECT_DIR / ".local").resolve()


def _running_sandbox(data_dir: Path) -> str | None:
    """The sandbox URL of a stack running on this data folder, if one answers."""
    try:
        url = json.loads((data_dir / "stack.json").read_text())["sandbox_url"]
        with urllib.request.urlopen(f"{url}/sandbox/health", timeout=2):
            return url
    except (OSError, ValueError, KeyError):
        return None


def cmd_demo(args) -> int:
    from infra.local.demo import DemoFailed, main as demo

    try:
        return demo(_data_dir(args))
    except DemoFailed as exc:
        print(f"storelink: demo stopped: {exc}", file=sys.stderr)
        return 1


def cmd_token(args) -> int:
    from chalicelib.auth import BACKOFFICE_ROLES

    if args.role not in BACKOFFICE_ROLES:
        print(f"storelink: --role must be one of {', '.join(BACKOFFICE_ROLES)}", file=sys.stderr)
        return 2
    if not TENANT_ID.match(args.tenant):
        print("storelink: --tenant must be an id of 1-64 characters [A-Za-z0-9_-]", file=sys.stderr)
        return 2
    print(mint_backoffice_token(_data_dir(args), args.role, args.tenant))
    return 0


def cmd_clock(args) -> int:
    from chalicelib.clock import CLOCK_FILE_NAME, BusinessClock, ClockError, parse_duration
    from chalicelib.domain.time import rfc3339

    data_dir = _data_dir(args)
    clock = BusinessClock(data_dir / CLOCK_FILE_NAME)
    if args.advance:
        try:
            seconds = parse_duration(args.advance)
            sandbox = _running_sandbox(data_dir)
            if sandbox:
                # Through the running sandbox, which also sees to what fell due.
                request = urllib.request.Request(
                    f"{sandbox}/sandbox/clock", data=json.dumps({"advance_s": seconds}).encode(),
                    headers={"Content-Type": "application/json"}, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=600) as response:
                        response.read()
                except urllib.error.HTTPError as exc:
                    raise ClockError(json.loads(exc.read())["error"]["message"]) from exc
            else:
                clock.advance(seconds)
                from infra.local.scheduler import request_tick

                request_tick(data_dir)  # a scheduler running without the sandbox still catches up
        except ClockError as exc:
            print(f"storelink: {exc}", file=sys.stderr)
            return 2
    offset = clock.offset_s()
    print(json.dumps({"now": rfc3339(clock.timestamp()), "offset_s": offset,
                      "offset": f"{offset // 86400}d {offset % 86400 // 3600}h {offset % 3600 // 60}m {offset % 60}s"}))
    return 0


def cmd_job(args) -> int:
    """Run one of app.py's schedules once, in this process, against the local stack."""
    from infra.local.environment import StackPorts, local_environment

    data_dir = _data_dir(args)
    ports = StackPorts()
    try:
        info = json.loads((data_dir / "stack.json").read_text())
        ports = StackPorts(*(int(info[f"{part}_url"].rsplit(":", 1)[1]) for part in ("api", "dynamodb", "sandbox")))
    except (OSError, ValueError, KeyError):
        pass  # no running stack recorded: the default ports
    os.environ.update(local_environment(data_dir, ports))
    os.chdir(PROJECT_DIR)
    import app as app_module
    from chalice.app import ScheduledEventConfig

    jobs = {s.name: s for s in app_module.app.event_sources if isinstance(s, ScheduledEventConfig)}
    if args.name not in jobs:
        print(f"storelink: unknown job {args.name!r}; jobs: {', '.join(sorted(jobs))}", file=sys.stderr)
        return 2
    detail = {}
    if args.date is not None:
        if args.name not in DATED_JOBS:
            print(f"storelink: --date applies to {', '.join(j for j in DATED_JOBS if j in jobs)} only",
                  file=sys.stderr)
            return 2
        from datetime import date

        try:
            date.fromisoformat(args.date)
        except ValueError:
            print("storelink: --date must be YYYY-MM-DD", file=sys.stderr)
            return 2
        detail["date"] = args.date
    handler = getattr(app_module, jobs[args.name].handler_string.split(".")[-1])
    event = {"version": "0", "id": "manual", "detail-type": "Scheduled Event", "source": "storelink.cli",
             "account": "000000000000", "time": "", "region": "local", "resources": [], "detail": detail}
    try:
        result = handler(event, None)
    except Exception as exc:  # noqa: BLE001 - reported with a non-zero exit
        print(f"storelink: job {args.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"job": args.name, "result": result}, default=str))
    if isinstance(result, dict) and result.get("ok") is False:
        # e.g. reconcile: discrepancies remain, a bill was refused or is not there yet, or
        # another run holds the day
        print(f"storelink: job {args.name}: {result.get('message') or _unresolved(result)}", file=sys.stderr)
        return 1
    return 0


def _unresolved(result: dict) -> str:
    return (f"{result.get('remaining', 0)} discrepancies remain unresolved, "
            f"{result.get('ledger_breaks', 0)} ledgers do not balance (status {result.get('status')})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storelink", description="StoreLink's local command line.")
    parser.add_argument("--data-dir", help="the stack's data folder (default: .local)")
    # Also accepted after the command (./storelink clock --data-dir X): SUPPRESS keeps
    # a value given before the command when none is given after it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="the stack's data folder (default: .local)")
    commands = parser.add_subparsers(dest="command", required=True)

    token = commands.add_parser("token", parents=[common], help="print a back-office bearer token for the local stage")
    token.add_argument("--role", required=True, help="brand, dealer or store")
    token.add_argument("--tenant", required=True, help="the brand, dealer or store id it is scoped to")
    token.set_defaults(run=cmd_token)

    clock = commands.add_parser("clock", parents=[common], help="show the business clock, or move it forward")
    clock.add_argument("--advance", metavar="DURATION", help="e.g. 90s, 15m, 2h, 8d")
    clock.set_defaults(run=cmd_clock)

    job = commands.add_parser("job", parents=[common], help="run a scheduled job once")
    job.add_argument("name")
    job.add_argument("--date", metavar="YYYY-MM-DD",
                     help=f"the day to work on instead of the job's default ({', '.join(DATED_JOBS)})")
    job.set_defaults(run=cmd_job)

    demo = commands.add_parser("demo", parents=[common], help="narrate one order's whole life against the running stack")
    demo.set_defaults(run=cmd_demo)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

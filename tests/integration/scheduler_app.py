"""A Chalice app with one schedule and one outbox handler, for the scheduler's tests.
Both append a line to the file named by SCHEDULER_TEST_MARKS."""
import json
import os

from chalice import Chalice, Rate

from chalicelib.jobs.outbox import HANDLERS

app = Chalice(app_name="scheduler-test")


def _mark(entry: dict) -> None:
    with open(os.environ["SCHEDULER_TEST_MARKS"], "a") as marks:
        marks.write(json.dumps(entry) + "\n")


@app.schedule(Rate(1, unit=Rate.HOURS))
def hourly_job(event):
    _mark({"job": "hourly_job", "time": event.time})


def _ping(outbox_id: str, payload: dict) -> None:
    _mark({"outbox_id": outbox_id, "payload": payload})


HANDLERS["TEST_PING"] = _ping

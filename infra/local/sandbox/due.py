"""The sandbox's due work: what falls due as business time passes — expired orders,
refund results, settlement of orders shipped 10 days ago, profit-sharing results and
day-30 unfreezes, notification deliveries and their retries.

It runs after every clock move (as the first of the clock handler's
``due_work_hooks``, see ``controls.py``) and on a background thread every second, so
wall time moves things along too. One lock keeps the two from running at once; a
delivery is also claimed in SQLite before it is sent (``notify.py``), so nothing is
delivered twice at once whoever runs it.
"""
from __future__ import annotations

import sys
import threading
import traceback


class DueWork:
    def __init__(self, tasks: list[tuple[str, callable]], log=sys.stderr):
        self._tasks = list(tasks)
        self._log = log
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, blocking: bool = True) -> bool:
        """Runs every task once, in order (refunds that succeed now are then notified in
        the same run). False if another run was under way and ``blocking`` is off."""
        if not self._lock.acquire(blocking=blocking):
            return False
        try:
            for name, task in self._tasks:
                try:
                    task()
                except Exception:  # noqa: BLE001 - one failing task must not starve the others
                    print(f"sandbox due work: {name} failed", file=self._log, flush=True)
                    traceback.print_exc(file=self._log)
        finally:
            self._lock.release()
        return True

    def start_background(self, interval_s: float = 1.0) -> threading.Thread:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.run(blocking=False)  # a clock move is running it already: skip this beat

        self._thread = threading.Thread(target=loop, name="sandbox-due-work", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

"""A plain progress bar for long jobs run by hand (``./storelink job ...``): drawn on
stderr only when stderr is a terminal, so Lambda's and the scheduler's logs never see it."""
from __future__ import annotations

import sys
import time

WIDTH = 30


class ProgressBar:
    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn_at = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn_at < 0.1 and (total is None or done < total):
            return                       # at most ten redraws a second
        self._drawn_at = now
        if total:
            filled = min(WIDTH, WIDTH * done // total)
            bar = "#" * filled + "-" * (WIDTH - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done:,}/{total:,} rows")
        else:
            self.stream.write(f"\r{self.label} {done:,} rows")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn_at:
            self.stream.write("\n")
            self.stream.flush()

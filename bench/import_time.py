"""Cold-start cost: `import app` against `import chalice, boto3, pynamodb`, both
measured in this run, each in fresh interpreters, interleaved so machine noise
hits both alike. Goal (issue M1): app <= 1.15 x baseline.

    python bench/import_time.py [--runs 15]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.15
SNIPPETS = {
    "baseline: import chalice, boto3, pynamodb": "import chalice, boto3, pynamodb",
    "import app": "import app",
}


def one_run(code: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    empty = [one_run("pass") for _ in range(3)]
    for code in SNIPPETS.values():  # warm the file cache and .pyc files
        one_run(code)
    times = {name: [] for name in SNIPPETS}
    for _ in range(args.runs):
        for name, code in SNIPPETS.items():
            times[name].append(one_run(code))
    interpreter = statistics.median(empty)
    print(f"interpreter start (subtracted): {interpreter * 1000:7.1f} ms")
    medians = {}
    for name, samples in times.items():
        medians[name] = max(statistics.median(samples) - interpreter, 1e-6)
        print(f"{name:45s} median {medians[name] * 1000:7.1f} ms  (min {(min(samples) - interpreter) * 1000:.1f})")
    baseline, app = medians.values()
    ratio = app / baseline
    print(f"ratio app/baseline: {ratio:.2f}  (goal <= {GOAL}) -> {'OK' if ratio <= GOAL else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reading a day's trade bill (issue M12): how fast StoreLink gets through a 1,000,000-row
ALL bill, and in how much memory. Goals: parsing >= 200,000 rows/s, peak memory < 256 MiB.

The bill is written by the sandbox's own writer (``infra.local.sandbox.bill_files.
trade_bill_lines``, the format of wechatpay-v3.md §7) into a gzip temporary file, as WeChat
Pay serves it. Its rows (fixed seed): 300 products at national prices (0.99 to 4,999.00
yuan) bought 1 to 3 at a time over 200 sub-merchants, the provider's 0.6 % fee, one order in
20 refunded in part (its own REFUND row, negative fee), a comma in one product name in 10.
``--distinct`` draws every amount at random instead (no price recurs: the worst case for
the parser's memo of amounts).

Printed, each over the whole file:
  baseline      gunzip + decode + split into lines, nothing else (``BillFile.lines()``)
  verify        gunzip + sha1 of the decompressed bytes (``verify_file``)
  parse pass    gunzip + decode + ``parse_trade_bill`` (every row built, the summary checked)
  parse only    the parse pass minus the baseline: the parser's own speed
  full path     verify + one parse pass (the file's way from download to rows)
  fetch_bill    what ``fetch_bill`` + ``rows()`` do: verify, a checking pass, the caller's pass
and the ratio of each to the baseline; then the peak memory of a parse pass (tracemalloc,
measured in a separate pass because tracing slows Python down) and the process's ru_maxrss.

    python bench/bill_parse.py [--rows 1000000] [--distinct]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.domain.bills import check, parse_trade_bill  # noqa: E402
from chalicelib.wechat.bills import APPLIED, BillApplication, BillFile, verify_file  # noqa: E402
from infra.local.sandbox.bill_files import TradeBillRow, trade_bill_lines  # noqa: E402

GOAL_ROWS_PER_S = 200_000
GOAL_PEAK_MIB = 256
DAY_START = 1735660800   # 2025-01-01 00:00 Beijing


def rows(n: int, distinct: bool):
    rng = random.Random(20250101)
    prices = [rng.randint(99, 499_900) for _ in range(300)]
    names = [f"Product {i}" + (", oak" if i % 10 == 0 else "") for i in range(300)]
    subs = [f"19000{i:05d}" for i in range(200)]
    made = 0
    while made < n:
        i = made
        sku = rng.randrange(300)
        total = rng.randint(1, 2_000_000) if distinct else prices[sku] * rng.choice((1, 1, 1, 2, 3))
        fee = (total * 6 + 500) // 1000
        sub = subs[i % 200]
        when = DAY_START + i * 86_000 // n
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when + 8 * 3600))
        tx, otn = f"42000000002025010100{i:08d}", f"O2025010100{i:08d}"
        yield TradeBillRow(stamp, "wx5f0c0ffee5a1d001", "1900000100", sub, tx, otn, f"oUser{i % 5000}", "SUCCESS",
                           total, total, fee, description=names[sku], attach=f"store=st-{i % 997}")
        made += 1
        if made < n and i % 20 == 7:
            part = max(1, total // 3)
            fee_back = (fee * part * 2 + total) // (2 * total)
            yield TradeBillRow(stamp, "wx5f0c0ffee5a1d001", "1900000100", sub, tx, otn, f"oUser{i % 5000}", "REFUND",
                               0, 0, -fee_back, description=names[sku], refund_id=f"5030000{i:08d}",
                               out_refund_no=f"{otn}-R1", refund_fen=part, refund_requested_fen=part,
                               refund_type="ORIGINAL", refund_status="SUCCESS")
            made += 1


def write_bill(path: str, n: int, distinct: bool) -> tuple[str, int]:
    digest = hashlib.sha1()
    size = 0
    with gzip.open(path, "wb", compresslevel=6) as out:
        batch = []
        for line in trade_bill_lines(rows(n, distinct), "ALL"):
            batch.append(line)
            if len(batch) == 10_000:
                data = "".join(batch).encode()
                digest.update(data)
                out.write(data)
                size += len(data)
                batch.clear()
        data = "".join(batch).encode()
        digest.update(data)
        out.write(data)
        size += len(data)
    return digest.hexdigest(), size


def timed(label: str, fn, results: dict) -> None:
    """Wall and CPU seconds of ``fn()``: CPU time is what the code costs when other processes
    share the machine, wall time what a job would see on it."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    results[label] = (time.perf_counter() - wall, time.process_time() - cpu)


class _LocalBills:
    """fetch_bill's collaborator for a file already on disk (a hard link: closing deletes only it)."""

    def __init__(self, path: str, hash_value: str, folder: str):
        self.path, self.hash_value, self.folder = path, hash_value, folder

    def apply_trade_bill(self, day, kind, sub_mchid):
        return BillApplication(APPLIED, f"tradebill:{kind}", "/v3/billdownload/file?token=x", "SHA1", self.hash_value)

    def download(self, application):
        link = os.path.join(self.folder, f"bill-{time.perf_counter_ns()}")
        os.link(self.path, link)
        gzipped = verify_file(link, self.hash_value)
        return BillFile(link, self.hash_value, gzipped, os.path.getsize(link))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--distinct", action="store_true", help="every amount drawn at random (no price recurs)")
    args = parser.parse_args()
    n = args.rows

    with tempfile.TemporaryDirectory(prefix="storelink-bench-") as folder:
        path = os.path.join(folder, "all.csv.gz")
        started = time.perf_counter()
        hash_value, size = write_bill(path, n, args.distinct)
        print(f"bill: {n:,} rows ALL ({'every amount distinct' if args.distinct else '300 national prices'}), "
              f"{size / 2**20:,.0f} MiB of text, {os.path.getsize(path) / 2**20:,.0f} MiB gzip; written in "
              f"{time.perf_counter() - started:.1f} s by infra.local.sandbox.bill_files.trade_bill_lines")
        bill = BillFile(os.path.join(folder, "keep"), hash_value, True, 0)
        os.link(path, bill.path)

        t: dict = {}
        timed("baseline", lambda: sum(1 for _ in bill.lines()), t)
        timed("verify", lambda: verify_file(path, hash_value), t)
        totals = {}
        timed("parse pass", lambda: totals.update(t=check(parse_trade_bill(bill.lines()))), t)
        assert totals["t"].rows == n, totals

        from chalicelib.services.bills import READY, fetch_bill

        def fetch_and_read():
            with fetch_bill("2025-01-01", "ALL", bills=_LocalBills(path, hash_value, folder), alerts=object(),
                            now=2e9) as fetched:
                assert fetched.outcome == READY, fetched
                count = sum(1 for _ in fetched.rows())
            assert count == n

        timed("fetch_bill", fetch_and_read, t)
        t["parse only"] = tuple(p - b for p, b in zip(t["parse pass"], t["baseline"]))
        t["full path"] = tuple(v + p for v, p in zip(t["verify"], t["parse pass"]))

        print(f"{'':14s} {'wall s':>7s} {'rows/s':>11s} {'cpu s':>7s} {'rows/s':>11s} {'x baseline (cpu)':>17s}")
        for label in ("baseline", "verify", "parse pass", "parse only", "full path", "fetch_bill"):
            wall, cpu = t[label]
            print(f"{label:14s} {wall:7.2f} {n / wall:11,.0f} {cpu:7.2f} {n / cpu:11,.0f} "
                  f"{cpu / t['baseline'][1]:17.2f}")

        tracemalloc.start()
        check(parse_trade_bill(bill.lines()))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
        bill.close()

    parse_rate = n / t["parse only"][1]
    print(f"peak memory of a parse pass (tracemalloc): {peak / 2**20:.1f} MiB; process ru_maxrss: {maxrss_mib:.0f} MiB")
    print(f"goals: parsing >= {GOAL_ROWS_PER_S:,} rows/s: {parse_rate:,.0f} (parse only, cpu), "
          f"{n / t['parse pass'][1]:,.0f} (with gunzip and decoding, cpu) -> "
          f"{'met' if parse_rate >= GOAL_ROWS_PER_S else 'NOT MET'}; peak < {GOAL_PEAK_MIB} MiB -> "
          f"{'met' if max(peak / 2**20, maxrss_mib) < GOAL_PEAK_MIB else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reconciling a day (issue M13): a generated 1,000,000-row trade bill and a 200,000-row
profit-sharing bill matched against the day's keys. Goals: matching >= 200,000 rows/s,
peak memory < 1 GiB.

What is generated (fixed arithmetic, no randomness, in memory):
  our side      ``--rows`` x 0.9 orders paid (900,000), 1 in 20 more orders CLOSED here and in
                no bill (45,000); a refund for 1 paid order in 9 (100,000: SUCCESS, 1 in 10
                PROCESSING in the bill and SUCCESS here); a brand split line for 1 paid order
                in 5 (180,000) and a return for 1 split in 9 (20,000); 200 sub-merchants,
                300 national prices, the 0.6 % fee. Held as ``DayKeys`` of OurPayment,
                OurRefund and OurSharingLine, as the DynamoDB reader will make them.
  the bills     made from the same orders by the sandbox's writers (``infra.local.sandbox.
                bill_files``: trade_bill_lines ALL, profitsharing_bill_lines) into temporary
                text files, read back by the real parsers (``chalicelib.domain.bills``). One
                order in 10,000 of each kind is made to differ (amount, an unknown payment
                on an order closed here, a refund nobody told us of, a split one fen more):
                the findings are checked to be exactly those.

Printed (CPU seconds: the machine is shared; wall seconds beside them):
  parse only       parse both bills, doing nothing with the rows (baseline of the streaming path)
  parse + match    the streaming path: parse, match, DaySummary.tally, keep the discrepancies
  match share      parse + match minus parse only: the matching's own cost
  iterate list     the rows pre-parsed into lists (in chunks of 200,000), iterated doing nothing
  match list       the same lists through match_* + DaySummary (the matching alone)
  match bare       the same lists through match_*, findings thrown away (no summary)
Peak memory is measured in fresh processes that build the keys and run the streaming path:
one under tracemalloc (the peak of Python's allocations), one without it for ru_maxrss (the
whole process; tracemalloc's own bookkeeping would double it).

    python bench/reconcile_match.py [--rows 1000000]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.domain.bills import parse_sharing_bill, parse_trade_bill  # noqa: E402
from chalicelib.domain.reconciliation import (AMOUNT_DIFFERS, MISSING_HERE, MISSING_THERE, SPLIT_DIFFERS,  # noqa: E402
                                              STATUS_DIFFERS, DayKeys, DaySummary, OurPayment, OurRefund,
                                              OurSharingLine, Seen, leftovers, match_sharing_rows, match_trade_rows,
                                              reconcile_day)
from infra.local.sandbox.bill_files import (RETURN, SPLIT, ProfitSharingBillRow, TradeBillRow,  # noqa: E402
                                            profitsharing_bill_lines, trade_bill_lines)

GOAL_ROWS_PER_S = 200_000
GOAL_PEAK_MIB = 1024
DAY = "2025-01-01"
DAY_START = 1735660800 - 8 * 3600          # 2025-01-01 00:00 Beijing, as UTC seconds
BRAND = "1900000200"
PRICES = [99 + (i * 7919) % 499_801 for i in range(300)]
SUBS = [f"19000{i:05d}" for i in range(200)]
ODD = 10_000                               # one order in ODD of each kind made to differ
CHUNK = 200_000


def orders(n_rows: int):
    """(i, sub, out_trade_no, transaction_id, total, fee, refunded, split) per paid order."""
    paid = n_rows * 9 // 10
    for i in range(paid):
        total = PRICES[(i * 31) % 300] * (1 + i % 3)
        yield (i, SUBS[i % 200], f"SL20250101{i:010d}", f"42000000002025010100{i:08d}", total,
               (total * 6 + 500) // 1000, i % 9 == 4, i % 5 == 2)


def _stamp(i: int, n: int) -> str:
    t = time.gmtime(DAY_START + 8 * 3600 + i * 86_000 // max(n, 1))
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def closed_orders(n_rows: int):
    for j in range(n_rows // 20):
        yield f"SL20250101C{j:09d}", SUBS[j % 200], PRICES[j % 300]


def make_keys(n_rows: int) -> DayKeys:
    keys = DayKeys(DAY, {}, {}, {})
    payments, refunds, sharing = keys.payments, keys.refunds, keys.sharing
    for i, sub, otn, tx, total, fee, refunded, split in orders(n_rows):
        payments[otn] = OurPayment(otn, sub, total, "PAID", tx, fee)
        if refunded:
            orn = f"{otn}R001"
            refunds[orn] = OurRefund(orn, otn, sub, max(1, total // 3), "SUCCESS")
        if split:
            out_no, amount = f"{otn}-S01", total * 3 // 10
            sharing[(out_no, BRAND)] = OurSharingLine("SPLIT", out_no, otn, sub, BRAND, amount, "SUCCESS")
            if i % 45 == 7:
                back = f"{otn}-R01"
                sharing[(back, BRAND)] = OurSharingLine("RETURN", back, otn, sub, BRAND, amount // 2, "SUCCESS")
    for otn, sub, total in closed_orders(n_rows):
        payments[otn] = OurPayment(otn, sub, total, "CLOSED")
    return keys


def trade_rows(n_rows: int):
    """The trade bill's rows; one order in ODD differs: amount (i % ODD == 11), an unknown
    payment on an order closed here (== 13), a refund nobody told us of (== 17)."""
    closed = list(islice(closed_orders(n_rows), 0, None, 1))
    for i, sub, otn, tx, total, fee, refunded, split in orders(n_rows):
        stamp = _stamp(i, n_rows)
        shown = total + 1 if i % ODD == 11 else total
        yield TradeBillRow(stamp, "wx5f0c0ffee5a1d001", "1900000100", sub, tx, otn, "oUser", "SUCCESS", shown, shown,
                           fee, description="Product, oak", attach="store=st-1")
        if refunded:
            part = max(1, total // 3)
            yield TradeBillRow(stamp, "wx5f0c0ffee5a1d001", "1900000100", sub, tx, otn, "oUser", "REFUND", 0, 0,
                               -((fee * part) // total), refund_id=f"5030000{i:013d}", out_refund_no=f"{otn}R001",
                               refund_fen=part, refund_requested_fen=part, refund_type="ORIGINAL",
                               refund_status="PROCESSING" if i % 10 == 3 else "SUCCESS")
        if i % ODD == 13:
            c_otn, c_sub, c_total = closed[(i // ODD) % len(closed)]
            yield TradeBillRow(stamp, "wx5f0c0ffee5a1d001", "1900000100", c_sub, f"4299{i:024d}", c_otn, "oUser",
                               "SUCCESS", c_total, c_total, (c_total * 6 + 500) // 1000)
        if i % ODD == 17:
            yield TradeBillRow(stamp, "wx5f0c0ffee5a1d001", "1900000100", sub, tx, otn, "oUser", "REFUND", 0, 0, 0,
                               refund_id=f"5039{i:016d}", out_refund_no=f"MISSED{i:012d}", refund_fen=1,
                               refund_requested_fen=1, refund_type="ORIGINAL", refund_status="SUCCESS")


def sharing_rows(n_rows: int):
    """The profit-sharing bill's rows; the split of one order in ODD (i % ODD == 12) is one fen more."""
    for i, sub, otn, tx, total, fee, refunded, split in orders(n_rows):
        if not split:
            continue
        stamp, amount = _stamp(i, n_rows), total * 3 // 10
        yield ProfitSharingBillRow(stamp, sub, "1900000100", tx, f"3008{i:024d}", f"3600{i:024d}", f"{otn}-S01",
                                   "MERCHANT_ID", BRAND, amount + (i % ODD == 12), SPLIT, "SUCCESS", "品牌方货款")
        if i % 45 == 7:
            yield ProfitSharingBillRow(stamp, sub, "1900000100", tx, f"3009{i:024d}", "", f"{otn}-R01",
                                       "MERCHANT_ID", BRAND, amount // 2, RETURN, "SUCCESS", "退货")


def expected_findings(n_rows: int) -> dict:
    paid = n_rows * 9 // 10
    count = lambda r: sum(1 for i in range(paid) if i % ODD == r)   # noqa: E731
    return {"AMOUNT_DIFFERS": count(11), "STATUS_DIFFERS": count(13), "MISSING_HERE": count(17),
            "SPLIT_DIFFERS": sum(1 for i in range(paid) if i % ODD == 12 and i % 5 == 2)}


def write(path: str, lines) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        batch = []
        for line in lines:
            batch.append(line)
            if len(batch) == 10_000:
                out.write("".join(batch))
                count += len(batch)
                batch.clear()
        out.write("".join(batch))
        count += len(batch)
    return count - 3                          # header, summary header, summary values


def read(path: str):
    with open(path, encoding="utf-8", newline="") as f:
        yield from f


def timed(label: str, fn, results: dict):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    results[label] = (time.perf_counter() - wall, time.process_time() - cpu)
    return value


def streaming_pass(trade_path: str, sharing_path: str, keys: DayKeys):
    summary = DaySummary(DAY)
    found = [f for f in summary.tally(reconcile_day(parse_trade_bill(read(trade_path)),
                                                    parse_sharing_bill(read(sharing_path)), keys))
             if f.outcome != "MATCHED"]
    return summary, found


def memory_pass(n_rows: int, trade_path: str, sharing_path: str, trace: bool) -> None:
    """In a fresh process: the keys built, then the streaming path; under tracemalloc (which
    itself costs memory per allocation, so ru_maxrss is taken from a pass without it)."""
    if trace:
        tracemalloc.start()
    keys = make_keys(n_rows)
    keys_bytes = tracemalloc.get_traced_memory()[0] if trace else 0
    summary, found = streaming_pass(trade_path, sharing_path, keys)
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    print(json.dumps({"keys_mib": keys_bytes / 2**20, "peak_mib": peak / 2**20, "found": len(found),
                      "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def chunks(rows, size):
    while True:
        chunk = list(islice(rows, size))
        if not chunk:
            return
        yield chunk


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="about this many trade-bill rows")
    parser.add_argument("--memory-pass", nargs=3, metavar=("TRACE|RSS", "TRADE", "SHARING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.rows
    if args.memory_pass:
        mode, trade_path, sharing_path = args.memory_pass
        memory_pass(n, trade_path, sharing_path, mode == "TRACE")
        return 0

    with tempfile.TemporaryDirectory(prefix="storelink-bench-") as folder:
        trade_path, sharing_path = os.path.join(folder, "all.csv"), os.path.join(folder, "ps.csv")
        started = time.perf_counter()
        n_trade = write(trade_path, trade_bill_lines(trade_rows(n), "ALL"))
        n_sharing = write(sharing_path, profitsharing_bill_lines(sharing_rows(n)))
        total = n_trade + n_sharing
        written = time.perf_counter() - started
        started = time.perf_counter()
        keys = make_keys(n)
        made = time.perf_counter() - started
        print(f"bills: {n_trade:,} trade rows ({len([k for k in keys.payments.values() if k.state == 'PAID']):,} "
              f"payments, {len(keys.refunds):,} refunds, + the injected), {n_sharing:,} profit-sharing rows; "
              f"{(os.path.getsize(trade_path) + os.path.getsize(sharing_path)) / 2**20:,.0f} MiB of text, written in "
              f"{written:.1f} s by infra.local.sandbox.bill_files")
        print(f"keys: {len(keys.payments):,} payments (incl. {n // 20:,} CLOSED here), {len(keys.refunds):,} refunds, "
              f"{len(keys.sharing):,} sharing lines; built in {made:.1f} s")

        t: dict = {}
        timed("parse only", lambda: (deque(parse_trade_bill(read(trade_path)), 0),
                                     deque(parse_sharing_bill(read(sharing_path)), 0)), t)
        summary, found = timed("parse + match", lambda: streaming_pass(trade_path, sharing_path, keys), t)
        t["match share"] = tuple(a - b for a, b in zip(t["parse + match"], t["parse only"]))
        counts = {c: sum(1 for f in found if f.outcome == c) for c in
                  (AMOUNT_DIFFERS, STATUS_DIFFERS, MISSING_HERE, SPLIT_DIFFERS, MISSING_THERE)}
        expected = {**expected_findings(n), MISSING_THERE: 0}
        assert counts == expected, (counts, expected)
        assert summary.count() == total, (summary.count(), total)

        # The matching alone, over rows parsed beforehand (in chunks, so the lists stay small)
        for label in ("iterate list", "match list", "match bare"):
            t[label] = (0.0, 0.0)
        seen_list, seen_bare, summary2 = Seen(), Seen(), DaySummary(DAY)
        for parse, match in ((parse_trade_bill(read(trade_path)), match_trade_rows),
                             (parse_sharing_bill(read(sharing_path)), match_sharing_rows)):
            for chunk in chunks(parse, CHUNK):
                for label, fn in (("iterate list", lambda: deque(chunk, 0)),
                                  ("match list", lambda: deque(summary2.tally(match(chunk, keys, seen_list)), 0)),
                                  ("match bare", lambda: deque(match(chunk, keys, seen_bare), 0))):
                    before = t[label]
                    timed(label, fn, t)
                    t[label] = (before[0] + t[label][0], before[1] + t[label][1])
        deque(summary2.tally(leftovers(keys, seen_list)), 0)
        assert summary2.count() == total and summary2.discrepancies() == len(found)

        print(f"{'':14s} {'wall s':>7s} {'rows/s':>11s} {'cpu s':>7s} {'rows/s':>11s}")
        for label in ("parse only", "parse + match", "match share", "iterate list", "match list", "match bare"):
            wall, cpu = t[label]
            print(f"{label:14s} {wall:7.2f} {total / wall:11,.0f} {cpu:7.2f} {total / cpu:11,.0f}")
        del keys, summary, found, summary2, seen_list, seen_bare

        rss, mem = (json.loads(subprocess.run([sys.executable, __file__, "--rows", str(n), "--memory-pass", mode,
                                               trade_path, sharing_path], check=True, capture_output=True,
                                              text=True).stdout) for mode in ("RSS", "TRACE"))
    match_rate = total / t["match list"][1]
    streaming_rate = total / t["parse + match"][1]
    print(f"findings: {sum(expected.values())} injected discrepancies found exactly ({expected}); the rest MATCHED")
    print(f"memory (fresh processes: keys + streaming parse + match): tracemalloc peak {mem['peak_mib']:.0f} MiB "
          f"(the keys alone {mem['keys_mib']:.0f} MiB); ru_maxrss {rss['maxrss_mib']:.0f} MiB (a pass without "
          f"tracemalloc; {mem['maxrss_mib']:.0f} MiB with it)")
    peak = max(mem["peak_mib"], rss["maxrss_mib"])
    print(f"goals: matching >= {GOAL_ROWS_PER_S:,} rows/s: {match_rate:,.0f} (match list, cpu), "
          f"{streaming_rate:,.0f} (parse + match, cpu) -> {'met' if match_rate >= GOAL_ROWS_PER_S else 'NOT MET'}; "
          f"peak < {GOAL_PEAK_MIB} MiB: {peak:.0f} -> {'met' if peak < GOAL_PEAK_MIB else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

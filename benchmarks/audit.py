"""Benchmark `migrator audit`: build 1M (and 3M with --3m) token workspaces quickly, audit them.

Prints, per size: build seconds, audit wall and CPU seconds, tokens/s and peak RSS
(ru_maxrss). The
issue's target: 1,000,000 tokens audited in <= 15 s, time growing linearly (1M vs 3M).

    python benchmarks/audit.py                 # 1M
    python benchmarks/audit.py --3m            # 1M and 3M
    python benchmarks/audit.py --tokens 200000 --keep /tmp/bench
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from migrator.audit import run_audit
from migrator.regions import zone_tables
from migrator.store import open_workspace

PAGES = 200
BUSINESS = ["US", "BR", "IN", "MX", "FR", "DE", "AU", "GB", None]


def build(path: Path, n: int, seed: int = 7) -> float:
    """A workspace with n tokens over PAGES pages and most of tzdata's zones."""
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    ws = open_workspace(path)
    conn = ws.conn
    zones = sorted(zone_tables().zone_tab) + ["UTC", "Asia/Calcutta", "US/Eastern", "Etc/GMT+3",
                                              "Atlantic/Jan_Mayen", "Europe/Belfast"]
    weights = [1.0] * len(zones)
    for hot, w in (("America/New_York", 60), ("America/Sao_Paulo", 50), ("Asia/Kolkata", 50),
                   ("Europe/Berlin", 40), ("Europe/London", 30), ("Asia/Tokyo", 20)):
        weights[zones.index(hot)] = w
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO pages (page_id, name, business_country, ad_account_id, currency) VALUES (?,?,?,?,?)",
        [(f"p{i}", f"Page {i}", BUSINESS[i % len(BUSINESS)], None if i % 17 == 0 else str(10**9 + i),
          "USD") for i in range(PAGES)])
    conn.executemany(
        "INSERT INTO contents (content_hash, page_id, source, message, outcome) VALUES (?,?,?,?,?)",
        [(f"c{i}", f"p{i % PAGES}", "library", '{"text":"hi"}',
          ["exact", "lossy", "needs_edit", "unsupported", None][i % 5]) for i in range(2000)])
    batch = 50_000
    tz_pick = rnd.choices(zones, weights, k=min(n, 200_000))  # reused cyclically: fast, varied
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(n, start + batch)):
            dup = i % 3 == 2  # a third of the tokens: a second topic of the previous token's person
            j = i - 1 if dup else i
            rows.append((
                f"tok{i:010d}", f"{i:012x}", f"p{j % PAGES}", f"psid{j}",
                "Deals", tz_pick[i % len(tz_pick)],
                ("US" if i % 40 == 0 else "JP" if i % 41 == 0 else None),
                "stopped" if i % 33 == 0 else "active",
                "DAILY" if i % 7 == 0 else None,
                1_600_000_000 if i % 101 == 0 else None,
            ))
        conn.executemany(
            "INSERT INTO tokens (token, token_hash, page_id, psid, topic_title, timezone, country,"
            " status, frequency, token_expiry) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    conn.execute("COMMIT")
    ws.close()
    return time.perf_counter() - t0


def bench(n: int, workdir: Path) -> float:
    path = workdir / f"audit-{n}.db"
    if path.exists():
        path.unlink()
    built = build(path, n)
    os.sync()  # the build's dirty pages must not be flushed on the audit's clock
    ws = open_workspace(path)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_audit(ws, as_of=date(2026, 3, 1))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    ws.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n:>10,} tokens: build {built:6.1f} s | audit {secs:6.2f} s (cpu {cpu:6.2f} s) | "
          f"{n / secs:>10,.0f} tokens/s | peak RSS {rss_mb:,.0f} MB | load average {os.getloadavg()[0]:.1f} | "
          f"verdicts {result.verdicts}")
    sys.stdout.flush()
    return secs, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--3m", dest="three", action="store_true", help="also run 3,000,000 tokens")
    ap.add_argument("--keep", metavar="DIR", help="write workspaces here and keep them")
    args = ap.parse_args()
    ctx = tempfile.TemporaryDirectory() if not args.keep else None
    workdir = Path(args.keep or ctx.name)
    workdir.mkdir(parents=True, exist_ok=True)
    s1, c1 = bench(args.tokens, workdir)
    if args.three:
        s3, c3 = bench(3 * args.tokens, workdir)
        print(f"3x tokens took {s3 / s1:.2f}x the wall time and {c3 / c1:.2f}x the CPU time"
              " (linear = 3.00x; wall time suffers when other processes share the 2 cores)")
    if ctx:
        ctx.cleanup()


if __name__ == "__main__":
    main()

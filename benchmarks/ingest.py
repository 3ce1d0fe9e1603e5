"""Ingest benchmark: N tokens as CSV and as webhook JSONL, records/s and peak RSS.

Targets (issue 2, 2-core machine): >= 100,000 CSV tokens/s and >= 50,000 webhook events/s,
peak memory under 300 MB and not growing with file size (compare --tokens 1000000 and 3000000).
Issue 19.5 raises them to >= 150,000 CSV rows/s, >= 0.7x of the sqlite3 shell's `.import` of
the same file into a table with a unique token index (printed beside it), and >= 80,000
webhook events/s. Each figure is printed with the 1-minute load average when it was taken.

An ingest parses in worker processes (one per core) while the main process merges, so
memory is reported for both: the main process's peak, the largest worker's peak, and their
sum over all workers (the most the ingest held at once). CPU seconds show how the work
split. This machine's speed drifts by 20-30% from minute to minute: use --repeat and read
the median.

    python benchmarks/ingest.py --tokens 1000000
    python benchmarks/ingest.py --tokens 3000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import Timer, peak_rss_mb, run_child  # noqa: E402

def child(db: str, path: str, fmt: str) -> None:
    import resource

    from migrator.inventory import ingest_tokens
    from migrator.inventory.ingest import default_workers
    from migrator.store import open_workspace

    ws = open_workspace(db)
    cpu0 = time.process_time()
    with Timer() as t:
        s = ingest_tokens(ws, [path], fmt=fmt)
    cpu = time.process_time() - cpu0
    ws.close()
    f = s.files[0]
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"records": f.records, "accepted": f.accepted, "seconds": t.seconds,
                      "peak_rss_mb": peak_rss_mb(), "worker_rss_mb": kids.ru_maxrss / 1024,
                      "workers": default_workers(), "cpu_main": cpu,
                      "cpu_workers": kids.ru_utime + kids.ru_stime}))


def calibrate() -> float:
    """Seconds for 20M iterations of a plain Python loop: this machine's speed right now."""
    t = time.perf_counter()
    x = 0
    for i in range(20_000_000):
        x += i
    return time.perf_counter() - t


def sqlite_import(d: Path, csv_path: Path) -> float | None:
    """Seconds for the sqlite3 shell to `.import` the CSV into a table with a unique token
    index (what a hand-rolled load costs: no checks, no merge); None without the shell."""
    shell = shutil.which("sqlite3")
    if not shell:
        return None
    db = d / "import.db"
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)
    header = csv_path.open().readline().strip().split(",")
    script = (f"CREATE TABLE t ({', '.join(header)});\nCREATE UNIQUE INDEX t_token ON t(token);\n"
              f".import --csv --skip 1 {csv_path} t\n")
    with Timer() as t:
        subprocess.run([shell, str(db)], input=script, text=True, check=True)
    return t.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1, help="ingest each file this many times")
    ap.add_argument("--child", nargs=3, metavar=("DB", "PATH", "FORMAT"))
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        print(f"generating {a.tokens:,} CSV rows and {a.tokens:,} webhook events ...", flush=True)
        from migrator.sample import write_tokens_csv, write_webhooks_jsonl

        write_tokens_csv(d / "tokens.csv", a.tokens)
        write_webhooks_jsonl(d / "webhooks.jsonl", a.tokens)
        rounds: dict[str, list[float]] = {"csv": [], "webhooks": [], "ratio": []}
        for _ in range(a.repeat):
            print(f"machine speed now: a 20M-step Python loop takes {calibrate():.2f} s "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
            base = sqlite_import(d, d / "tokens.csv")
            if base is not None:
                print(f"sqlite3 .import  {a.tokens:>10,} rows in {base:6.1f} s = {a.tokens / base:>9,.0f} rows/s"
                      f" (indexed table; load average {os.getloadavg()[0]:.1f})", flush=True)
            for name, fmt in (("tokens.csv", "csv"), ("webhooks.jsonl", "webhooks")):
                db = d / f"{fmt}.db"
                for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                    p.unlink(missing_ok=True)
                r = run_child(__file__, str(db), str(d / name), fmt)
                rate = r["records"] / r["seconds"]
                total = r["peak_rss_mb"] + r["workers"] * r["worker_rss_mb"]
                print(f"{fmt:9s} {r['records']:>10,} records in {r['seconds']:6.1f} s = "
                      f"{rate:>9,.0f} records/s | peak RSS main {r['peak_rss_mb']:.0f} MB + "
                      f"{r['workers']} workers x {r['worker_rss_mb']:.0f} MB = {total:.0f} MB | "
                      f"CPU main {r['cpu_main']:.1f} s, workers {r['cpu_workers']:.1f} s"
                      f" | load average {os.getloadavg()[0]:.1f}", flush=True)
                rounds[fmt].append(rate)
                if fmt == "csv" and base is not None:
                    rounds["ratio"].append(rate / (a.tokens / base))
                    print(f"          {rate / (a.tokens / base):.2f}x of sqlite3 .import", flush=True)
        if a.repeat > 1:  # each round's ratio pairs an ingest with the .import run just before it
            for key, unit in (("csv", "rows/s"), ("webhooks", "events/s"), ("ratio", "x of .import")):
                v = sorted(rounds[key])
                if v:
                    fmt_ = (lambda x: f"{x:.2f}") if key == "ratio" else (lambda x: f"{x:,.0f}")
                    print(f"median of {len(v)} rounds: {key} {fmt_(v[len(v) // 2])} {unit}"
                          f" (min {fmt_(v[0])}, max {fmt_(v[-1])})", flush=True)


if __name__ == "__main__":
    main()

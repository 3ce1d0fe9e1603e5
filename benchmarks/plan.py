"""Benchmark `migrator plan`: 1,000,000 `migrate` tokens planned in <= 15 s (<= 10 s with
budgets binding), memory flat.

Builds a workspace straight in SQL (tokens, pages, converted content and a finished audit
run whose every token is a primary `migrate`, with the results digest a real audit stores), then plans it in a fresh child process and
prints: seconds, sends/s, peak RSS, plan file size, and the staleness check's seconds.

    python benchmarks/plan.py                  # 1M
    python benchmarks/plan.py --tokens 200000 --keep /tmp/bench-plan
    python benchmarks/plan.py --binding        # budgets bind: the sequential (Python) pass
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import Timer, fresh_workdir, peak_rss_mb, run_child  # noqa: E402

from migrator.audit.runs import results_sums  # noqa: E402
from migrator.store import open_workspace  # noqa: E402

PAGES = 200
TOPICS = ["Weekly deals", "Price drops", "Back in stock", None]
ZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo",
         "Asia/Kolkata", "Asia/Jakarta", "Asia/Manila", "Pacific/Kiritimati", "Pacific/Pago_Pago",
         "Asia/Ho_Chi_Minh", "America/Mexico_City", None, "Not/AZone"]
START = 1_796_083_200  # 2026-12-01T00:00:00Z

SPEC = """
name = "benchmark"
[[ad_accounts]]
id = "1000000001"
currency = "USD"
business_country = "US"
cost_per_message = 2
[campaign]
per = "page_topic"
daily_budget = 2000000
start = 2026-12-01T00:00:00Z
[schedule]
window = "09:00-20:00"
batch_size = 10000
batches_per_day = 40
"""


def build(path: Path, n: int, seed: int = 11) -> None:
    rnd = random.Random(seed)
    ws = open_workspace(path)
    conn = ws.conn
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO pages (page_id, name, business_country, ad_account_id, currency) "
                     "VALUES (?,?,?,?,?)",
                     [(f"{10**14 + i}", f"Page {i}", "US", "1000000001", "USD") for i in range(PAGES)])
    rows = []
    for i in range(PAGES):
        for j, topic in enumerate(TOPICS):
            rows.append((f"h{i}-{j}", f"{10**14 + i}", topic, "library",
                         json.dumps({"text": f"hello {i} {j}"}), "exact",
                         json.dumps({"text": f"hello {i} {j}"})))
    conn.executemany("INSERT INTO contents (content_hash, page_id, topic_title, source, message, outcome,"
                     " mm_message) VALUES (?,?,?,?,?,?,?)", rows)
    conn.execute("INSERT INTO content_records (record_key, content_id, page_id, topic_title) "
                 "SELECT 'r' || id, id, page_id, topic_title FROM contents")
    run_id = conn.execute(
        "INSERT INTO audit_runs (as_of, started_at, finished_at, status, rules_version, "
        "rules_fingerprint, rules_origins, options, tokens) VALUES ('2026-11-23', 0, 0, 'done', 'x',"
        " 'x', '[]', '{}', ?)", (n,)).lastrowid
    batch_t, batch_a = [], []
    for k in range(1, n + 1):
        page = f"{10**14 + rnd.randrange(PAGES)}"
        nea = START + rnd.randrange(0, 4 * 86400) if rnd.random() < 0.2 else None
        batch_t.append((k, f"tok{k:012d}", f"h{k:010x}", page, f"ps{k}", TOPICS[k % 4],
                        ZONES[rnd.randrange(len(ZONES))], nea))
        batch_a.append((k, run_id, page))
        if len(batch_t) >= 50_000:
            _flush(conn, batch_t, batch_a)
    _flush(conn, batch_t, batch_a)
    # a finished audit stores its results' checksums (`audit_runs.results_digest`) as it ends,
    # so a plan's fingerprint and staleness check read them instead of scanning audit_tokens:
    # store them here as the audit does
    conn.execute("UPDATE audit_runs SET results_digest = ? WHERE id = ?",
                 (json.dumps(results_sums(conn, run_id)), run_id))
    conn.execute("COMMIT")
    ws.close()


def _flush(conn, bt, ba) -> None:
    conn.executemany("INSERT INTO tokens (id, token, token_hash, page_id, psid, topic_title, timezone,"
                     " next_eligible_at) VALUES (?,?,?,?,?,?,?,?)", bt)
    conn.executemany("INSERT INTO audit_tokens (token_id, run_id, page_id, verdict, certain, "
                     "region_source, flags, is_primary) VALUES (?,?,?,'migrate',1,'explicit',0,1)", ba)
    bt.clear()
    ba.clear()


def child(db: str, spec: str, out: str) -> None:
    from migrator.plan import load_plan, make_plan, plan_staleness

    ws = open_workspace(db)
    cpu0 = time.process_time()
    with Timer() as t:
        plan = make_plan(ws, spec, as_of=date(2026, 11, 23), out=out)
    cpu = time.process_time() - cpu0
    with Timer() as s:
        stale = plan_staleness(ws, load_plan(out))
    print(json.dumps({"seconds": t.seconds, "cpu": cpu, "sends": plan.sends, "batches": len(plan.batches),
                      "campaigns": len(plan.campaigns), "stale": stale, "staleness_seconds": s.seconds,
                      "file_bytes": Path(out).stat().st_size, "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--keep", default=None, help="directory to keep the workspace in")
    ap.add_argument("--binding", action="store_true",
                    help="budgets that bind (lifetime 1,000 messages per campaign): the sequential pass")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    d, db = fresh_workdir(a.keep, "bench-plan-")
    spec, out = d / "bench.toml", d / "plan.json"
    spec.write_text(SPEC.replace("daily_budget = 2000000", "lifetime_budget = 2000") if a.binding else SPEC)
    t0 = time.perf_counter()
    build(db, a.tokens)
    print(f"built {a.tokens:,} migrate tokens in {time.perf_counter() - t0:.1f} s ({db})")
    r = run_child(__file__, str(db), str(spec), str(out))
    print(f"plan{' (binding budgets)' if a.binding else ''}: {r['sends']:,} sends, {r['campaigns']} campaigns, {r['batches']} batches in "
          f"{r['seconds']:.2f} s (cpu {r['cpu']:.2f} s) = {r['sends'] / r['seconds']:,.0f} sends/s; peak RSS "
          f"{r['peak_rss_mb']:.0f} MB; plan file {r['file_bytes'] / 1024:.0f} KiB; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"staleness check: {r['staleness_seconds']:.2f} s (fresh: {not r['stale']})")
    print("target: 1,000,000 tokens in <= 15 s; with --binding in <= 10 s (issue 19.5)")


if __name__ == "__main__":
    main()

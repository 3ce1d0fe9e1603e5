"""Benchmark `migrator execute`: 100,000 sends against the emulator over loopback.

Builds a planned workspace straight in SQL (as benchmarks/plan.py does, all sends due now), starts
`migrator emulator serve` (warm-up 0), then in a fresh child process runs `execute_plan` with
concurrency 64 and the durable ledger (in_flight committed before each request leaves, results in
group commits). Then the emulator is reset and the same sends are made the way a partner would
without this tool: a plain loop, one request at a time (`GraphClient.send_message`, no ledger).
Prints rate, peak RSS (flat memory: compare --sends 20000 with 100000) and the ratio.
Target: >= 1,000 sends/s.

    python benchmarks/execute.py [--sends 100000] [--concurrency 64] [--baseline-sends N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import fresh_workdir, peak_rss_mb, run_child  # noqa: E402
from plan import build  # noqa: E402

SPEC = """
name = "execute-benchmark"
[[ad_accounts]]
id = "1000000001"
currency = "USD"
business_country = "US"
cost_per_message = 2
[campaign]
per = "page"
name = "{page_name} {key}"
daily_budget = 100000000
start = 2026-10-01T00:00:00Z
[schedule]
window = "00:00-23:59"
warmup_minutes = 0
batch_size = 10000
batches_per_day = 1000
"""


def child(db: str, plan_path: str, url: str, concurrency: str) -> None:
    from migrator.execute import execute_plan
    from migrator.store import open_workspace

    ws = open_workspace(db)
    t0 = time.perf_counter()
    s = execute_plan(ws, plan_path, execute=True, base_url=url, access_token="bench-token",
                     concurrency=int(concurrency))
    secs = time.perf_counter() - t0
    print(json.dumps({"seconds": secs, "sent": s.sent, "attempted": s.attempted, "outcome": s.outcome,
                      "ledger": s.ledger, "campaigns": len(s.campaigns), "peak_rss_mb": peak_rss_mb()}))


def baseline(db: str, url: str, n: int) -> dict:
    """One request at a time, no ledger: what a hand-written loop does."""
    import sqlite3

    from migrator.graph import NO_RETRY, GraphClient

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT t.token, c.page_id, c.ad_account_id, m.mm_message FROM plan_sends s "
                        "JOIN tokens t ON t.id = s.token_id JOIN plan_campaigns c ON c.plan_id = s.plan_id "
                        "AND c.campaign_key = s.campaign_key JOIN plan_messages m ON m.plan_id = s.plan_id "
                        "AND m.message_key = s.message_key ORDER BY s.send_id LIMIT ?", (n,)).fetchall()
    ids: dict[str, str] = {}
    ok = 0
    with GraphClient("bench-token", base_url=url, retry=NO_RETRY) as g:
        t0 = time.perf_counter()
        for token, page, act, msg in rows:
            if page not in ids:
                ids[page] = g.create_campaign(act, name=f"baseline {page}", page_id=page,
                                              daily_budget=100000000)["id"]
            g.send_message(act, message_id=ids[page], subscription_token=token, message=json.loads(msg))
            ok += 1
        secs = time.perf_counter() - t0
    return {"seconds": secs, "sent": ok}


def planned_workdir(keep: str | None, prefix: str, sends: int):
    """A work directory with a workspace of `sends` migrate tokens, all due now, and its saved plan.

    Returns (dir, db, plan_path, plan). Shared with benchmarks/sdk.py."""
    from migrator.plan import make_plan
    from migrator.store import open_workspace

    d, db = fresh_workdir(keep, prefix)
    spec, plan_path = d / "bench.toml", d / "plan.json"
    spec.write_text(SPEC)
    build(db, sends)
    with open_workspace(db) as ws:
        ws.conn.execute("UPDATE tokens SET next_eligible_at = NULL")
        ws.conn.execute("UPDATE audit_runs SET as_of = '2026-10-01'")
        plan = make_plan(ws, spec, as_of=date(2026, 10, 1), out=plan_path)
    return d, db, plan_path, plan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sends", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--baseline-sends", type=int, default=None, help="default: the same number of sends")
    ap.add_argument("--keep", default=None)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    t0 = time.perf_counter()
    d, db, plan_path, plan = planned_workdir(a.keep, "bench-exec-", a.sends)
    print(f"built and planned {plan.sends:,} sends in {len(plan.campaigns)} campaigns "
          f"in {time.perf_counter() - t0:.1f} s ({d})")
    server = subprocess.Popen([sys.executable, "-m", "migrator", "--db", str(db), "emulator", "serve",
                               "--port", "0", "--warmup", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        url = "http://" + line.split("http://")[1].split()[0]
        r = run_child(__file__, str(db), str(plan_path), url, str(a.concurrency))
        rate = r["sent"] / r["seconds"]
        print(f"executor: {r['sent']:,} sent ({r['outcome']}, ledger {r['ledger']}) in {r['seconds']:.1f} s = "
              f"{rate:,.0f} sends/s with concurrency {a.concurrency} and the durable ledger; "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")
        import httpx

        httpx.post(f"{url}/_emulator/reset")
        n = a.baseline_sends or a.sends
        b = baseline(str(db), url, n)
        brate = b["sent"] / b["seconds"]
        print(f"plain loop, one request at a time, no ledger: {b['sent']:,} sent in {b['seconds']:.1f} s = "
              f"{brate:,.0f} sends/s")
        print(f"ratio: the executor is {rate / brate:.1f}x the plain loop; target >= 1,000 sends/s")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()

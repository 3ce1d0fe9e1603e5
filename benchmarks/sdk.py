"""The executor against Meta's own `facebook-business` SDK, on one emulator with Meta-like latency.

What a partner does today without this tool is a loop over the SDK: one `AdAccount.create_message`
at a time, or batches of up to 50 calls (`api.new_batch()`, one HTTP request per batch). This
script builds a planned workspace (as benchmarks/execute.py does), serves the emulator on loopback
with a fixed latency on every Graph call (150 ms by default, about what a partner sees from Meta),
and measures three ways of making the same kind of sends:

1. the executor (`execute_plan`, durable ledger, default concurrency unless --concurrency);
2. the SDK loop, one call at a time;
3. the SDK batch loop, 50 calls per HTTP request (each call still counts against Meta's limits).

It prints sends/s for each and the ratios. Needs `pip install facebook-business` (not a project
dependency: only this benchmark uses it).

    python benchmarks/sdk.py [--sends 20000] [--latency-ms 150] [--sdk-sends 300] [--batch-sends 5000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import run_child  # noqa: E402
from execute import child, planned_workdir  # noqa: E402

ACCESS = "bench-token"


def _rows(db: str, n: int) -> list[tuple[str, str, str, str]]:
    import sqlite3

    conn = sqlite3.connect(db)
    return conn.execute(
        "SELECT t.token, c.page_id, c.ad_account_id, m.mm_message FROM plan_sends s "
        "JOIN tokens t ON t.id = s.token_id JOIN plan_campaigns c ON c.plan_id = s.plan_id "
        "AND c.campaign_key = s.campaign_key JOIN plan_messages m ON m.plan_id = s.plan_id "
        "AND m.message_key = s.message_key ORDER BY s.send_id LIMIT ?", (n,)).fetchall()


def _sdk(url: str):
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    FacebookSession.GRAPH = url  # the emulator instead of graph.facebook.com
    return FacebookAdsApi.init(access_token=ACCESS, api_version="v24.0")


def _campaigns(api, rows) -> dict[str, str]:
    from facebook_business.adobjects.adaccount import AdAccount

    ids: dict[str, str] = {}
    for _, page, act, _ in rows:
        if page not in ids:
            c = AdAccount(f"act_{act}", api=api).create_message_campaign(
                params={"name": f"sdk {page}", "page_id": page, "daily_budget": 100000000})
            ids[page] = c["id"]
    return ids


def sdk_loop(url: str, rows) -> dict:
    from facebook_business.adobjects.adaccount import AdAccount

    api = _sdk(url)
    ids = _campaigns(api, rows)
    ok = failed = 0
    t0 = time.perf_counter()
    for token, page, act, msg in rows:
        try:
            AdAccount(f"act_{act}", api=api).create_message(params={
                "message_id": ids[page], "messenger_delivery_data": {"subscription_token": token},
                "message": json.loads(msg)})
            ok += 1
        except Exception:  # the SDK raises FacebookRequestError per refusal
            failed += 1
    return {"seconds": time.perf_counter() - t0, "sent": ok, "failed": failed}


def sdk_batch_loop(url: str, rows) -> dict:
    from facebook_business.adobjects.adaccount import AdAccount

    api = _sdk(url)
    ids = _campaigns(api, rows)
    counts = {"sent": 0, "failed": 0, "unknown": 0}

    def ok(_):
        counts["sent"] += 1

    def bad(_):
        counts["failed"] += 1

    t0 = time.perf_counter()
    for i in range(0, len(rows), 50):
        batch = api.new_batch()
        for token, page, act, msg in rows[i:i + 50]:
            AdAccount(f"act_{act}", api=api).create_message(params={
                "message_id": ids[page], "messenger_delivery_data": {"subscription_token": token},
                "message": json.loads(msg)}, batch=batch, success=ok, failure=bad)
        left = batch.execute()  # calls that came back null: their outcome is unknown
        counts["unknown"] += len(left) if left is not None else 0
    return {"seconds": time.perf_counter() - t0, **counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sends", type=int, default=20_000, help="sends the executor makes")
    ap.add_argument("--concurrency", type=int, default=None, help="executor concurrency (default: its own)")
    ap.add_argument("--latency-ms", type=float, default=150.0)
    ap.add_argument("--sdk-sends", type=int, default=300, help="sends of the one-at-a-time SDK loop")
    ap.add_argument("--batch-sends", type=int, default=5_000, help="sends of the SDK batch loop")
    ap.add_argument("--keep", default=None)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    try:
        import facebook_business  # noqa: F401
    except ImportError:
        sys.exit("this benchmark needs Meta's SDK: pip install facebook-business")
    n_rows = max(a.sends, a.sdk_sends, a.batch_sends)
    d, db, plan_path, _ = planned_workdir(a.keep, "bench-sdk-", n_rows)
    faults = d / "latency.toml"
    faults.write_text(f'[latency]\ndistribution = "fixed"\nmedian_ms = {a.latency_ms}\n')
    server = subprocess.Popen([sys.executable, "-m", "migrator", "--db", str(db), "emulator", "serve",
                               "--port", "0", "--warmup", "0", "--faults", str(faults)],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = "http://" + server.stdout.readline().split("http://")[1].split()[0]
        import httpx

        conc = a.concurrency
        if conc is None:
            from migrator.execute.engine import ExecOptions
            conc = ExecOptions().concurrency
        print(f"emulator {url}, {a.latency_ms:.0f} ms on every call", flush=True)
        r = run_child(__file__, str(db), str(plan_path), url, str(conc))
        ex_rate = r["sent"] / r["seconds"]
        print(f"executor (concurrency {conc}, durable ledger): {r['sent']:,} sent in {r['seconds']:.1f} s "
              f"= {ex_rate:,.1f} sends/s", flush=True)
        rows = _rows(str(db), n_rows)
        httpx.post(f"{url}/_emulator/reset")
        s = sdk_loop(url, rows[:a.sdk_sends])
        sdk_rate = s["sent"] / s["seconds"]
        print(f"SDK loop, one call at a time: {s['sent']:,} sent ({s['failed']} failed) in {s['seconds']:.1f} s "
              f"= {sdk_rate:,.1f} sends/s", flush=True)
        httpx.post(f"{url}/_emulator/reset")
        b = sdk_batch_loop(url, rows[:a.batch_sends])
        b_rate = b["sent"] / b["seconds"]
        print(f"SDK batch loop, 50 calls a request: {b['sent']:,} sent ({b['failed']} failed, "
              f"{b['unknown']} unknown) in {b['seconds']:.1f} s = {b_rate:,.1f} sends/s", flush=True)
        print(f"ratios: executor / SDK loop = {ex_rate / sdk_rate:.1f}x; executor / SDK batch loop = "
              f"{ex_rate / b_rate:.1f}x; SDK batch / SDK loop = {b_rate / sdk_rate:.1f}x")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()

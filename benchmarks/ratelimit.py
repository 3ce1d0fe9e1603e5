"""The executor at its defaults against an account rate limit: how close to the limit, how few throttles.

Serves the emulator on loopback with 150 ms on every Graph call (`--faults` latency, about what a
partner sees from Meta) and a per-ad-account limit of `--limit` calls/s counted over a rolling
window of `--window` seconds (`--account-calls-per-window`, `--window-seconds`; beyond it sends
get 2300078 with remaining_seconds, and every answer carries the usage headers). Runs
`execute_plan` with its default options (concurrency 64, the adaptive in-flight limit) in a child
process, then the SDK loop of benchmarks/sdk.py (one `create_message` at a time) for the ratio.

Prints the achieved rate over whole windows after the first (the first window starts empty, so a
burst of a whole window's calls is allowed there) as % of the limit, the share of requests throttled, the
ratio to the SDK loop, and the load average (the machine is shared). Targets (issue 19.1):
>= 90 % of the limit, < 1 % throttled, >= 50x the SDK loop.

    python benchmarks/ratelimit.py [--limit 100] [--window 30] [--seconds 120] [--latency-ms 150]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import run_child  # noqa: E402
from execute import planned_workdir  # noqa: E402


def child(db: str, plan_path: str, url: str) -> None:
    from migrator.execute import execute_plan
    from migrator.store import open_workspace

    ws = open_workspace(db)
    done: list[float] = []
    t0 = time.monotonic()

    def progress(n: int) -> None:
        done.extend([time.monotonic() - t0] * n)

    s = execute_plan(ws, plan_path, execute=True, base_url=url, access_token="bench-token", progress=progress)
    print(json.dumps({"seconds": time.monotonic() - t0, "sent": s.sent, "attempted": s.attempted,
                      "outcome": s.outcome, "ledger": s.ledger, "limit": s.in_flight_limit,
                      "pauses": s.pauses, "times": done}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=float, default=100.0, help="the account's calls per second")
    ap.add_argument("--window", type=float, default=30.0, help="seconds of the rolling usage window")
    ap.add_argument("--seconds", type=float, default=120.0, help="about how long the executor runs")
    ap.add_argument("--latency-ms", type=float, default=150.0)
    ap.add_argument("--sdk-sends", type=int, default=100)
    ap.add_argument("--keep", default=None)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    calls = int(a.limit * a.window)
    sends = int(a.limit * (a.seconds + 2 * a.window))   # the first window allows a burst of `calls` more
    d, db, plan_path, plan = planned_workdir(a.keep, "bench-ratelimit-", max(sends, a.sdk_sends))
    faults = d / "latency.toml"
    faults.write_text(f'[latency]\ndistribution = "fixed"\nmedian_ms = {a.latency_ms}\n')
    server = subprocess.Popen([sys.executable, "-m", "migrator", "--db", str(db), "emulator", "serve",
                               "--port", "0", "--warmup", "0", "--faults", str(faults),
                               "--account-calls-per-window", str(calls), "--window-seconds", str(a.window)],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = "http://" + server.stdout.readline().split("http://")[1].split()[0]
        from migrator.execute.summary import ExecOptions

        print(f"emulator {url}: {a.latency_ms:.0f} ms per call, {calls:,} calls per ad account per rolling "
              f"{a.window:g} s ({a.limit:g}/s); {plan.sends:,} sends planned; executor defaults "
              f"(concurrency {ExecOptions().concurrency})", flush=True)
        load0 = os.getloadavg()
        r = run_child(__file__, str(db), str(plan_path), url)
        load1 = os.getloadavg()
        times = r["times"]
        # whole windows from the end of the first (counted from the first send, after the campaigns'
        # set-up): a rolling window repeats its pattern every window, so part of one would be biased
        first = times[0] if times else 0.0
        k = int((times[-1] - first) // a.window) - 1 if times else 0
        if k < 1:
            sys.exit("the run was shorter than two windows: raise --seconds")
        lo, hi = first + a.window, first + a.window * (k + 1)
        rate = sum(1 for t in times if lo <= t < hi) / (hi - lo)
        throttled = r["attempted"] - r["sent"]
        step = max(1, int(a.window // 10))
        per = [0] * (int(times[-1] // step) + 1 if times else 0)
        for t in times:
            per[int(t // step)] += 1
        print(f"sends per second, every {step} s: " + " ".join(f"{n / step:.0f}" for n in per))
        print(f"executor: {r['sent']:,} sent, {r['attempted']:,} requests ({r['outcome']}) in {r['seconds']:.1f} s; "
              f"in-flight limit {r['limit']}; pauses {r['pauses']}")
        print(f"over {k} whole window(s) after the first: {rate:,.1f} sends/s = {100 * rate / a.limit:.1f} % of the limit; "
              f"throttled {throttled:,} of {r['attempted']:,} requests = {100 * throttled / max(1, r['attempted']):.2f} %")
        import httpx

        from sdk import sdk_loop, _rows

        httpx.post(f"{url}/_emulator/reset")
        s = sdk_loop(url, _rows(str(db), a.sdk_sends))
        sdk_rate = s["sent"] / s["seconds"]
        print(f"SDK loop, one call at a time: {s['sent']:,} sent in {s['seconds']:.1f} s = {sdk_rate:,.1f} sends/s; "
              f"executor / SDK loop = {rate / sdk_rate:.1f}x")
        print(f"load average before/after: {load0[0]:.1f} / {load1[0]:.1f} (2 cores, shared machine)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()

"""Benchmark the executor's HTTP client: CPU µs per send and sends/s, on https as against Meta.

Builds a planned workspace (as benchmarks/execute.py does), starts two durable emulators on
loopback (`--state` SQLite files, warm-up 0): one serving https with a throwaway self-signed
certificate (`emulator serve --tls`), one plain http. Then, each in a fresh child process so the
CPU time measured is the client's own, the same N sends go out with 64 in flight:

  graph-*   through `AsyncGraphClient.send_message` (request building, error classing, usage
            headers), on each transport the executor can use;
  raw-*     the bare library doing the least a send needs (a prebuilt head, an orjson body, status
            and `success` checked), to show what each stack costs underneath: httpx, httpcore
            directly, aiohttp.

graph-default is the executor's client (aiohttp since this benchmark decided it, docs/execute.md);
graph-httpx the same client on httpx's stack, as used against Meta before. (The hand-written
HTTP/1.1 transport this benchmark also measured is gone; its figures are in docs/execute.md.)

Last, `execute_plan` itself on https with the default client and the durable ledger (in_flight
committed before each request leaves): the figure that matters, with the emulator's own CPU per
request beside the executor's (both share the machine's cores). The machine is shared: the load
average is printed beside every figure.

    python benchmarks/client.py [--sends 20000] [--concurrency 64] [--modes graph-httpx,raw-aiohttp,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import run_child  # noqa: E402

MODES = ("graph-default-https", "graph-httpx-https", "raw-httpx-https", "raw-httpcore-https", "raw-aiohttp-https",
         "graph-default-http", "raw-aiohttp-http")


def load() -> str:
    return "load %.1f/%.1f/%.1f" % os.getloadavg()


def _rows(db: str, n: int):
    import sqlite3

    conn = sqlite3.connect(db)
    return conn.execute("SELECT t.token, c.page_id, c.ad_account_id, m.mm_message FROM plan_sends s "
                        "JOIN tokens t ON t.id = s.token_id JOIN plan_campaigns c ON c.plan_id = s.plan_id "
                        "AND c.campaign_key = s.campaign_key JOIN plan_messages m ON m.plan_id = s.plan_id "
                        "AND m.message_key = s.message_key ORDER BY s.send_id LIMIT ?", (n,)).fetchall()


def child(mode: str, url: str, ca: str, db: str, n: str, concurrency: str) -> None:
    import orjson

    from migrator.graph import NO_RETRY, GraphClient

    n, conc = int(n), int(concurrency)
    ca = ca or None
    rows = _rows(db, n)
    ids: dict[str, str] = {}
    with GraphClient("bench-token", base_url=url, retry=NO_RETRY, ca_cert=ca) as g:
        for _, page, act, _ in rows:
            if page not in ids:
                ids[page] = g.create_campaign(act, name=f"client-bench {page}", page_id=page,
                                              daily_budget=100000000)["id"]
    msgs: dict[str, dict] = {}
    work = []
    for token, page, act, msg in rows:
        m = msgs.get(msg) or msgs.setdefault(msg, orjson.loads(msg))
        work.append((act, ids[page], token, m))
    kind, impl, scheme = mode.split("-")
    result = asyncio.run(_run(kind, impl, url, ca, work, conc))
    print(json.dumps(result))


async def _run(kind: str, impl: str, url: str, ca: str | None, work: list, conc: int) -> dict:
    import orjson

    from migrator.graph import NO_RETRY, AsyncGraphClient
    from migrator.graph.client import tls_context

    ctx = tls_context(ca)
    ok = bad = 0
    close = []
    headers = {"Authorization": "Bearer bench-token", "Accept": "application/json",
               "Content-Type": "application/json"}
    if kind == "graph":
        wire = "httpx" if impl == "httpx" else "aiohttp"
        client = AsyncGraphClient("bench-token", base_url=url, max_connections=conc,
                                  retry=NO_RETRY, ca_cert=ca, wire=wire)
        close.insert(0, client.aclose)

        async def one(act, mid, token, msg):
            await client.send_message(act, message_id=mid, subscription_token=token, message=msg)
            return True
    else:
        def body(mid, token, msg):
            return orjson.dumps({"message_id": mid, "messenger_delivery_data": {"subscription_token": token},
                                 "message": msg})

        def good(status: int, content: bytes) -> bool:
            return status == 200 and orjson.loads(content).get("success") is True

        if impl == "httpx":
            import httpx

            limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
            hx = httpx.AsyncClient(verify=ctx, limits=limits, timeout=30)
            close.append(hx.aclose)

            async def one(act, mid, token, msg):
                r = await hx.post(f"{url}/v24.0/act_{act}/messages", content=body(mid, token, msg), headers=headers)
                return good(r.status_code, r.content)
        elif impl == "httpcore":
            import httpcore

            pool = httpcore.AsyncConnectionPool(ssl_context=ctx, max_connections=conc,
                                                max_keepalive_connections=conc)
            close.append(pool.aclose)
            hl = list(headers.items())

            async def one(act, mid, token, msg):
                r = await pool.request("POST", f"{url}/v24.0/act_{act}/messages", headers=hl,
                                       content=body(mid, token, msg))
                return good(r.status, r.content)
        elif impl == "aiohttp":
            import aiohttp

            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc, ssl=ctx),
                                            cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=("User-Agent",))
            close.append(session.close)

            async def one(act, mid, token, msg):
                async with session.post(f"{url}/v24.0/act_{act}/messages", data=body(mid, token, msg),
                                        headers=headers) as r:
                    return good(r.status, await r.read())
        else:
            raise SystemExit(f"unknown mode {impl}")

    it = iter(work)

    async def worker():
        nonlocal ok, bad
        for item in it:
            try:
                if await one(*item):
                    ok += 1
                else:
                    bad += 1
            except Exception:  # noqa: BLE001 - counted: a benchmark reports, it does not stop
                bad += 1

    # warm the connections (TLS handshakes are not per-send cost), then measure the rest
    warm = work[:conc]
    it = iter(warm)
    await asyncio.gather(*(worker() for _ in range(conc)))
    it = iter(work[conc:])
    ok = bad = 0
    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    for f in close:
        await f()
    return {"ok": ok, "bad": bad, "cpu": cpu, "wall": wall}


def exec_child(db: str, plan_path: str, url: str, ca: str, concurrency: str) -> None:
    from migrator.execute import execute_plan
    from migrator.store import open_workspace

    ws = open_workspace(db)
    c0, t0 = time.process_time(), time.perf_counter()
    s = execute_plan(ws, plan_path, execute=True, base_url=url, access_token="bench-token",
                     concurrency=int(concurrency), ca_cert=ca or None)
    print(json.dumps({"cpu": time.process_time() - c0, "wall": time.perf_counter() - t0, "sent": s.sent,
                      "outcome": s.outcome, "ledger": s.ledger}))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc): the emulator's, beside the executor's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve(db: Path, state: Path, tls: bool) -> tuple[subprocess.Popen, str, str]:
    cmd = [sys.executable, "-m", "migrator", "--db", str(db), "emulator", "serve", "--port", "0", "--warmup", "0",
           "--state", str(state)] + (["--tls"] if tls else [])
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    scheme = "https://" if tls else "http://"
    url = scheme + line.split(scheme)[1].split()[0]
    ca = ""
    if tls:
        ca = p.stdout.readline().split("throwaway certificate: ")[1].split()[0]
    return p, url, ca


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sends", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--httpcore-sends", type=int, default=2_000,
                    help="raw-httpcore costs ~16 ms of CPU per send with 64 connections in one pool: fewer sends")
    ap.add_argument("--executor", action=argparse.BooleanOptionalAction, default=True,
                    help="also run execute_plan on https with the default client (durable ledger)")
    ap.add_argument("--keep", default=None)
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--exec-child", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    if a.exec_child:
        exec_child(*a.exec_child)
        return
    from execute import planned_workdir

    t0 = time.perf_counter()
    d, db, plan_path, plan = planned_workdir(a.keep, "bench-client-", a.sends)
    print(f"built and planned {plan.sends:,} sends in {len(plan.campaigns)} campaigns in "
          f"{time.perf_counter() - t0:.1f} s ({d}); {load()}")
    servers = {}
    try:
        for tls in (True, False):
            servers[tls] = _serve(db, d / f"emulator-{'tls' if tls else 'plain'}.sqlite", tls)
        import httpx

        from migrator.graph.client import tls_context

        print(f"{'mode':<22} {'sends':>7} {'errors':>6} {'sends/s':>8} {'CPU µs/send':>12}   load")
        for mode in [m for m in a.modes.split(",") if m]:
            tls = mode.endswith("https")
            _, url, ca = servers[tls]
            httpx.post(f"{url}/_emulator/reset", verify=tls_context(ca or None))
            n = min(a.sends, a.httpcore_sends) if "httpcore" in mode else a.sends
            try:
                r = subprocess.run([sys.executable, __file__, "--child", mode, url, ca, str(db), str(n),
                                    str(a.concurrency)], capture_output=True, text=True, check=True)
            except subprocess.CalledProcessError as exc:
                print(f"{mode:<22} failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}")
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
            n = res["ok"] + res["bad"]
            print(f"{mode:<22} {res['ok']:>7,} {res['bad']:>6,} {n / res['wall']:>8,.0f} "
                  f"{res['cpu'] / max(n, 1) * 1e6:>12,.0f}   {load()}", flush=True)
        if a.executor:
            p, url, ca = servers[True]
            httpx.post(f"{url}/_emulator/reset", verify=tls_context(ca))
            e0 = _cpu_seconds(p.pid)
            r = subprocess.run([sys.executable, __file__, "--exec-child", str(db), str(plan_path), url, ca,
                                str(a.concurrency)], capture_output=True, text=True, check=True)
            emu = _cpu_seconds(p.pid) - e0
            res = json.loads(r.stdout.strip().splitlines()[-1])
            n = max(res["sent"], 1)
            print(f"executor (execute_plan, https, default client, durable ledger, concurrency {a.concurrency}): "
                  f"{res['sent']:,} sent ({res['outcome']}) in {res['wall']:.1f} s = {res['sent'] / res['wall']:,.0f} "
                  f"sends/s, {res['cpu'] / n * 1e6:,.0f} CPU µs per send (ledger and set-up included); "
                  f"emulator {emu / n * 1e6:,.0f} CPU µs per request (durable state, TLS; same 2 cores); "
                  f"{load()}")
    finally:
        for p, _, _ in servers.values():
            p.terminate()
            p.wait(10)


if __name__ == "__main__":
    main()

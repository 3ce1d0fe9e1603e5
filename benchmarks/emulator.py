"""How many sends per second the emulator sustains over loopback with 64 concurrent connections.

Starts `migrator emulator serve` as a subprocess (webhooks on, warm-up 0), creates one campaign,
then 64 keep-alive HTTP/1.1 connections send N distinct-token messages (a minimal asyncio client,
so the figure measures the server, not the client library). Also runs a shorter pass with the
project's own AsyncGraphClient (httpx) for the end-to-end figure.
Prints rate and peak RSS of the server (VmHWM) and of this process. Target: >= 3,000 sends/s.

    python benchmarks/emulator.py [--sends 40000] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to report the server's cost per send."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _vmhwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class _Conn(asyncio.Protocol):
    """A keep-alive HTTP/1.1 client connection as a bare protocol (cheaper than streams): sends the
    next request as soon as the previous answer is complete."""

    def __init__(self, bodies: list[bytes], done: asyncio.Future, counts: dict):
        self.bodies, self.done, self.counts = bodies, done, counts
        self.buf = b""

    def connection_made(self, transport):
        self.transport = transport
        self._send()

    def _send(self):
        if not self.bodies:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        body = self.bodies.pop()
        self.transport.write(b"POST /v24.0/act_1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Authorization: Bearer bench\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    def data_received(self, data):
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        i = head.find(b"content-length:")
        length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None])
        if len(self.buf) < end + 4 + length:
            return
        payload = self.buf[end + 4:end + 4 + length]
        self.buf = self.buf[end + 4 + length:]
        if head.startswith(b"http/1.1 200") and b'"success":true' in payload:
            self.counts["ok"] += 1
        else:
            self.counts["err"] += 1
        self._send()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


async def _raw_client(port: int, bodies: list[bytes], conns: int) -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    counts = {"ok": 0, "err": 0}
    shared = list(bodies)
    futures = []
    for _ in range(conns):
        fut = loop.create_future()
        await loop.create_connection(lambda f=fut: _Conn(shared, f, counts), "127.0.0.1", port)
        futures.append(fut)
    await asyncio.gather(*futures)
    return counts["ok"], counts["err"]


async def _httpx_client(port: int, message_id: str, tokens: list[str], conns: int) -> tuple[int, int]:
    """`conns` workers sharing one AsyncGraphClient (as an executor would), each sending in turn."""
    from migrator.graph import NO_RETRY, AsyncGraphClient, GraphError

    ok = err = 0
    queue = list(tokens)
    async with AsyncGraphClient("bench", base_url=f"http://127.0.0.1:{port}", max_connections=conns,
                                retry=NO_RETRY) as g:
        async def worker():
            nonlocal ok, err
            while queue:
                tok = queue.pop()
                try:
                    await g.send_message("1", message_id=message_id, subscription_token=tok,
                                         message={"text": "New stock is in."})
                    ok += 1
                except GraphError:
                    err += 1

        await asyncio.gather(*(worker() for _ in range(conns)))
    return ok, err


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sends", type=int, default=40_000)
    ap.add_argument("--httpx-sends", type=int, default=6_000)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    total = args.sends + args.httpx_sends
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp, "subscribers.jsonl")
        with subs.open("w") as fh:
            for i in range(total):
                fh.write(json.dumps({"token": f"tok{i:08d}", "page_id": "111", "region": "US",
                                     "opted_out": False, "psid": f"p{i}"}) + "\n")
        cmd = [sys.executable, "-m", "migrator", "emulator", "serve", "--port", "0", "--warmup", "0",
               "--subscribers", str(subs), "--webhooks", str(Path(tmp, "webhooks.jsonl")),
               "--cost-per-message", "0"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            started = time.perf_counter() - t0
            port = int(line.split("http://127.0.0.1:")[1].split()[0])
            import httpx

            r = httpx.post(f"http://127.0.0.1:{port}/v24.0/act_1/message_campaign",
                           headers={"Authorization": "Bearer bench"}, json={"name": "bench", "page_id": "111"})
            message_id = r.json()["id"]
            bodies = [json.dumps({"message_id": message_id, "messenger_delivery_data": {
                "subscription_token": f"tok{i:08d}"}, "message": {"text": "New stock is in."}}).encode()
                for i in range(args.sends)]
            cpu0 = _cpu_seconds(proc.pid)
            t1 = time.perf_counter()
            ok, err = asyncio.run(_raw_client(port, bodies, args.connections))
            raw_s = time.perf_counter() - t1
            server_cpu = _cpu_seconds(proc.pid) - cpu0
            tokens = [f"tok{i:08d}" for i in range(args.sends, total)]
            t2 = time.perf_counter()
            ok2, err2 = asyncio.run(_httpx_client(port, message_id, tokens, args.connections))
            httpx_s = time.perf_counter() - t2
            server_rss = _vmhwm_kb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        events = sum(1 for _ in Path(tmp, "webhooks.jsonl").open())
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"server start to listening: {started:.2f} s")
    print(f"raw client : {ok} ok, {err} errors in {raw_s:.2f} s = {ok / raw_s:,.0f} sends/s "
          f"({args.connections} connections)")
    per_send = server_cpu / max(ok + err, 1)
    print(f"server CPU per send: {per_send * 1e6:.0f} us (one core could serve ~{1 / per_send:,.0f} sends/s; "
          f"the client shares the 2 cores)")
    print(f"httpx client (AsyncGraphClient): {ok2} ok, {err2} errors in {httpx_s:.2f} s = "
          f"{ok2 / httpx_s:,.0f} sends/s")
    print(f"webhook events written: {events}")
    print(f"peak RSS: server {server_rss / 1024:.1f} MB, benchmark process {self_rss / 1024:.1f} MB "
          f"(cpus: {os.cpu_count()})")


if __name__ == "__main__":
    main()

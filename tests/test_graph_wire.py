"""The async client's wire (aiohttp, graph/wire.py) and the emulator's TLS: answers in every shape a
server may give, failures classed as exactly-once needs them, and https verified, never skipped."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _exec import Emu, ledger, planned
from migrator.emulator.config import FaultProfile
from migrator.emulator.tls import throwaway_certificate
from migrator.graph import NO_RETRY, AsyncGraphClient, GraphConfigError, NetworkError
from migrator.graph.client import tls_context
from migrator.graph.wire import check_headers


# ---------------------------------------------------------------------------------------- helpers
async def _server(answers, *, split=None, ssl_context=None):
    """A tiny HTTP server answering each request with the next raw answer (None: never answer).

    `split`: byte offsets at which each answer is cut into separate writes (with a pause between)."""
    seen = []

    async def handle(reader, writer):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                return
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)
            body = await reader.readexactly(length)
            seen.append((head, body))
            if not answers:
                writer.close()
                return
            answer = answers.pop(0)
            if answer is None:
                await asyncio.sleep(5)
                return
            cuts = [0, *sorted({c for c in (split or []) if 0 < c < len(answer)}), len(answer)]
            for a, b in zip(cuts, cuts[1:]):
                writer.write(answer[a:b])
                await writer.drain()
                await asyncio.sleep(0)
            if b"Connection: close" in answer or b"HTTP/1.1 200" not in answer[:12]:
                writer.close()
                return

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    return server, server.sockets[0].getsockname()[1], seen


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (len(body), extra, body))


SUCCESS = b'{"success":true,"marketing_message_tracking_id":"t1"}'


async def _send(url, **kw):
    g = AsyncGraphClient("tok-SECRET", base_url=url, retry=NO_RETRY, max_connections=1, **kw)
    try:
        return await g.send_message("1", message_id="9", subscription_token="s", message={"text": "hi"})
    finally:
        await g.aclose()


def _chunked(body: bytes, sizes) -> bytes:
    out, i = [], 0
    for n in sizes:
        if i >= len(body):
            break
        part = body[i:i + n]
        out.append(b"%x\r\n%s\r\n" % (len(part), part))
        i += n
    if i < len(body):
        out.append(b"%x\r\n%s\r\n" % (len(body) - i, body[i:]))
    return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
            + b"".join(out) + b"0\r\n\r\n")


# ---------------------------------------------------------------------------------------- answers
def test_content_length_chunked_keep_alive_and_close_answers_through_the_default_client():
    async def go():
        chunked = _chunked(b'{"success":true,"marketing_message_tracking_id":"abc-123"}', [16, 7])
        answers = [_ok(SUCCESS), chunked,
                   _ok(b'{"success":true,"marketing_message_tracking_id":"t3"}', b"Connection: close\r\n"),
                   _ok(b'{"success":true,"marketing_message_tracking_id":"t4"}')]
        server, port, seen = await _server(answers)
        async with server:
            g = AsyncGraphClient("tok-SECRET", base_url=f"http://127.0.0.1:{port}", retry=NO_RETRY, max_connections=1)
            ids = [(await g.send_message("1", message_id="9", subscription_token=f"s{i}",
                                         message={"text": "hi"})).tracking_id for i in range(4)]
            await g.aclose()
        assert ids == ["t1", "abc-123", "t3", "t4"]
        assert all(b"Authorization: Bearer tok-SECRET" in h for h, _ in seen)
        assert all(b"cookie" not in h.lower() for h, _ in seen)
        assert seen[0][1] == b'{"message_id":"9","messenger_delivery_data":{"subscription_token":"s0"},' \
                             b'"message":{"text":"hi"}}'

    asyncio.run(go())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_answer_split_anywhere_or_chunked_anyhow_reads_the_same(data):
    """The answer arrives in pieces cut at arbitrary bytes, chunked in arbitrary sizes: same tracking id."""
    tid = data.draw(st.text("abcdef0123456789-", min_size=1, max_size=40))
    body = b'{"success":true,"marketing_message_tracking_id":"%s"}' % tid.encode()
    answer = data.draw(st.sampled_from(["length", "chunked"]))
    raw = _ok(body) if answer == "length" else _chunked(body, data.draw(st.lists(st.integers(1, 20), max_size=8)))
    cuts = data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=6))

    async def go():
        server, port, _ = await _server([raw], split=cuts)
        async with server:
            return await _send(f"http://127.0.0.1:{port}")

    assert asyncio.run(go()).tracking_id == tid


def _never_accepted(raw: bytes, *, split=None):
    """Send once against `raw`; return the NetworkError. Must never come back as a success."""
    async def go():
        server, port, _ = await _server([raw], split=split)
        async with server:
            try:
                r = await _send(f"http://127.0.0.1:{port}", timeout=2)
            except NetworkError as err:
                return err
            raise AssertionError(f"a broken answer was accepted: {r}")

    return asyncio.run(go())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_truncated_answer_is_an_ambiguous_error_never_an_accepted_send(data):
    full = data.draw(st.sampled_from([_ok(SUCCESS), _chunked(SUCCESS, [10, 10, 10])]))
    head_end = full.index(b"\r\n\r\n") + 4
    cut = data.draw(st.integers(head_end, len(full) - 1))   # the whole head arrived, the body did not
    err = _never_accepted(full[:cut])
    assert err.ambiguous and err.kind in ("reset", "timeout", "bad_response"), err


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}",                       # status not a number
    b"HTTQ/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",                       # not HTTP
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n" + SUCCESS,                  # bad length
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n" + SUCCESS,   # two lengths
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + SUCCESS,   # bad chunk size
    b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n" + SUCCESS,                         # header without colon
    b"garbage\r\n\r\n",
])
def test_a_malformed_answer_after_the_request_left_is_unknown_not_refused(raw):
    err = _never_accepted(raw)
    assert err.ambiguous and err.kind != "connect", err


def test_a_success_status_with_a_non_json_or_unsuccessful_body_is_not_a_send():
    for body in (b"<html>ok</html>", b'{"success":false}', b'{"success":true}', b""):
        err = _never_accepted(_ok(body))
        assert err.kind == "bad_response", (body, err)


def test_a_redirect_is_not_followed_so_a_send_is_never_posted_twice():
    async def go():
        server, port, seen = await _server([b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /again\r\n"
                                            b"Content-Length: 0\r\n\r\n", _ok(SUCCESS)])
        async with server:
            with pytest.raises(NetworkError) as e:
                await _send(f"http://127.0.0.1:{port}")
        return e.value, seen

    err, seen = asyncio.run(go())
    assert len(seen) == 1 and err.kind == "bad_response", (err, seen)


# ---------------------------------------------------------------------------------------- failures
def test_failures_map_to_the_clients_network_classes():
    async def go():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        s.close()
        with pytest.raises(NetworkError) as e:
            await _send(f"http://127.0.0.1:{dead}")
        assert e.value.kind == "connect" and not e.value.ambiguous      # never left: safe to retry
        server, port, _ = await _server([None])
        async with server:
            with pytest.raises(NetworkError) as e:
                await _send(f"http://127.0.0.1:{port}", timeout=0.3)
            assert e.value.kind == "timeout" and e.value.ambiguous      # may have gone out: unknown

    asyncio.run(go())


def test_a_line_break_in_a_header_is_refused_before_anything_is_written():
    for headers in ({"X-Note": "a\r\nX-Injected: 1"}, {"X-Note": "a\nb"}, {"X-Note": "a\0b"},
                    {"X-Bad\r\nName": "v"}, {"X:Bad": "v"}):
        with pytest.raises(httpx.LocalProtocolError) as e:
            check_headers(headers)
        assert "nothing was sent" in str(e.value) and "Injected" not in str(e.value)

    async def go():
        seen = []

        async def handle(reader, writer):
            seen.append(await reader.read(1 << 16))
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            g = AsyncGraphClient("sometoken", base_url=f"http://127.0.0.1:{port}", retry=NO_RETRY)
            # past the token check, as a bug elsewhere might put it
            g._heads[None]["Authorization"] = "Bearer sometoken\r\nX-Injected: 1"
            with pytest.raises(NetworkError) as e:
                await g.call("GET", "me")
            await g.aclose()
            await asyncio.sleep(0.05)
        return e.value, seen

    err, seen = asyncio.run(go())
    assert seen == [] and not err.ambiguous and "sometoken" not in err.message


# ---------------------------------------------------------------------------------------- TLS
def test_the_throwaway_certificate_is_private_and_gone_afterwards():
    with throwaway_certificate() as cert:
        d = cert.key_file.parent
        assert stat.S_IMODE(os.stat(cert.key_file).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert b"PRIVATE KEY" in cert.key_file.read_bytes() and b"CERTIFICATE" in cert.cert_file.read_bytes()
    assert not d.exists()


def test_https_is_verified_and_trusts_a_rehearsal_certificate_only_when_told(monkeypatch):
    monkeypatch.delenv("MIGRATOR_CA_CERT", raising=False)
    with throwaway_certificate() as cert:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert.cert_file, cert.key_file)

        async def go(**kw):
            server, port, seen = await _server([_ok(SUCCESS)], ssl_context=server_ctx)
            async with server:
                try:
                    return await _send(f"https://127.0.0.1:{port}", **kw), seen
                except NetworkError as err:
                    return err, seen

        err, seen = asyncio.run(go())
        assert isinstance(err, NetworkError) and err.kind == "connect" and not err.ambiguous and seen == []
        ok, seen = asyncio.run(go(ca_cert=cert.cert_file))
        assert ok.tracking_id == "t1" and len(seen) == 1
        monkeypatch.setenv("MIGRATOR_CA_CERT", str(cert.cert_file))
        ok, _ = asyncio.run(go())
        assert ok.tracking_id == "t1"
    with pytest.raises(GraphConfigError) as e:
        tls_context(cert.cert_file)          # gone now: a clear error, not a silent fallback
    assert "--ca-cert" in e.value.message


# ---------------------------------------------------------------------------------------- exactly-once
@contextmanager
def _served(app, cert):
    """The emulator app on a loopback TLS socket, served by uvicorn in a thread of this process."""
    import uvicorn

    from migrator.emulator.server import FastHTTPProtocol, listen_socket

    sock = listen_socket("127.0.0.1", 0)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", http=FastHTTPProtocol,
                            loop="asyncio", ssl_certfile=str(cert.cert_file), ssl_keyfile=str(cert.key_file))
    server = uvicorn.Server(config)
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        t.join(10)


def test_a_send_whose_answer_is_lost_stays_unknown_and_is_never_sent_twice(ws, tmp_path):
    """Over https with the default client, the emulator in-process: resets after Meta took the send."""
    p = planned(ws, tmp_path, 60)
    emu = Emu(ws, faults=FaultProfile(reset_rate=0.3), seed=3)
    with throwaway_certificate() as cert, _served(emu.app, cert) as url:
        s1 = execute_plan_over(ws, p, url, cert, emu)
        s2 = execute_plan_over(ws, p, url, cert, emu)    # a second run: unknown stays unknown
    accepted = [s.token for s in emu.accepted()]
    assert len(accepted) == len(set(accepted))                          # never twice
    rows = dict(ws.conn.execute("SELECT t.token, e.state FROM exec_sends e JOIN tokens t ON t.id = e.token_id "
                                "WHERE e.plan_id = ?", (p.plan_id,)).fetchall())
    assert all(rows[t] in ("sent", "unknown") for t in accepted)       # what Meta took is never "planned"
    assert {t for t, s in rows.items() if s == "sent"} <= set(accepted)  # "sent" only when Meta took it
    counts = ledger(ws, p.plan_id)
    assert counts.get("unknown", 0) > 0 and s1.unknown == counts["unknown"] and s2.unknown == 0
    assert set(counts) <= {"sent", "unknown"}


def execute_plan_over(ws, plan, url, cert, emu):
    from migrator.execute import execute_plan

    return execute_plan(ws, plan, execute=True, base_url=url, access_token="sys-token-SECRET", ca_cert=cert.cert_file,
                        clock=emu.clock, sleep=emu.sleep, concurrency=8)


def test_usage_headers_are_read_again_only_when_they_change():
    usage = b'X-Ad-Account-Usage: {"acc_id_util_pct": %d, "reset_time_duration": 30}\r\n'

    async def go():
        answers = [_ok(SUCCESS, usage % 10), _ok(SUCCESS, usage % 10), _ok(SUCCESS, usage % 95), _ok(SUCCESS)]
        server, port, _ = await _server(answers)
        async with server:
            g = AsyncGraphClient("tok", base_url=f"http://127.0.0.1:{port}", retry=NO_RETRY, max_connections=1)
            out = [(await g.send_message("1", message_id="9", subscription_token="s", message={"text": "x"})).usage
                   for _ in range(4)]
            await g.aclose()
        return out

    a, b, c, d = asyncio.run(go())
    assert a.max_pct == 10 and b is a                  # same text: the parsed value is reused
    assert c.max_pct == 95 and c is not a
    assert not d.seen and d.max_pct == 0               # the headers went away: no stale usage

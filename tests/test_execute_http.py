"""The executor's lean HTTP/1.1 transport: bodies, keep-alive, and failures as the client classifies them."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from migrator.execute.http import FastTransport
from migrator.graph import AsyncGraphClient, NetworkError, NO_RETRY


async def _server(answers):
    """A tiny HTTP server answering each request with the next raw answer (None: never answer)."""
    seen = []

    async def handle(reader, writer):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")), 0)
            body = await reader.readexactly(length)
            seen.append((head, body))
            answer = answers.pop(0)
            if answer is None:
                await asyncio.sleep(5)
                return
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer:
                writer.close()
                return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_content_length_chunked_and_close_answers():
    async def go():
        chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
                   b"10\r\n{\"success\":true,\r\n2A\r\n\"marketing_message_tracking_id\":\"abc-123\"}\r\n0\r\n\r\n")
        answers = [_ok(b'{"success":true,"marketing_message_tracking_id":"t1"}'), chunked,
                   _ok(b'{"success":true,"marketing_message_tracking_id":"t3"}', b"Connection: close\r\n"),
                   _ok(b'{"success":true,"marketing_message_tracking_id":"t4"}')]
        server, port, seen = await _server(answers)
        async with server:
            t = FastTransport(max_connections=1)
            g = AsyncGraphClient("tok-SECRET", base_url=f"http://127.0.0.1:{port}", transport=t, retry=NO_RETRY)
            ids = [(await g.send_message("1", message_id="9", subscription_token=f"s{i}",
                                         message={"text": "hi"})).tracking_id for i in range(4)]
            await g.aclose()
            await t.aclose()
        assert ids == ["t1", "abc-123", "t3", "t4"]
        assert all(b"Authorization: Bearer tok-SECRET" in h for h, _ in seen)
        assert b'"subscription_token":"s0"' in seen[0][1]

    asyncio.run(go())


def test_failures_map_to_the_clients_network_classes():
    async def go():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        s.close()
        t = FastTransport(read_timeout=0.3)
        g = AsyncGraphClient("tok", base_url=f"http://127.0.0.1:{dead}", transport=t, retry=NO_RETRY)
        with pytest.raises(NetworkError) as e:
            await g.send_message("1", message_id="9", subscription_token="s", message={"text": "x"})
        assert e.value.kind == "connect" and not e.value.ambiguous      # never left: safe to retry
        server, port, _ = await _server([None, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"succ"])
        async with server:
            g = AsyncGraphClient("tok", base_url=f"http://127.0.0.1:{port}", transport=t, retry=NO_RETRY,
                                 timeout=0.3)
            with pytest.raises(NetworkError) as e:
                await g.send_message("1", message_id="9", subscription_token="s", message={"text": "x"})
            assert e.value.kind == "timeout" and e.value.ambiguous      # may have gone out: unknown
            await t.aclose()
        assert isinstance(httpx.ReadTimeout("x"), httpx.TimeoutException)

    asyncio.run(go())

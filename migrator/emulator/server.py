"""Serving the emulator over a real socket with uvicorn, tuned so the server is not the bottleneck.

uvicorn manages the socket, lifespan and signals; the HTTP/1.1 protocol is either uvicorn's h11
(complete, slower: ~230 us of parsing per request here) or `FastHTTPProtocol`, a small keep-alive
HTTP/1.1 parser for what Graph clients send (Content-Length bodies, `Expect: 100-continue`), which
answers each request with one socket write. Chunked request bodies get 411 from the fast protocol;
use `--http h11` for clients that need them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any
from urllib.parse import unquote

from uvicorn.protocols.utils import get_local_addr, get_remote_addr

log = logging.getLogger("uvicorn.error")
_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
            411: b"Length Required", 413: b"Payload Too Large", 431: b"Request Header Fields Too Large",
            500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable",
            504: b"Gateway Timeout"}
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024


class FastHTTPProtocol(asyncio.Protocol):
    """One connection: parse a request, run the ASGI app, write the whole answer at once, repeat."""

    def __init__(self, config, server_state, app_state: dict[str, Any] | None = None, _loop=None):
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.app_state = app_state or {}
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.closed = False
        self.close_when_idle = False
        self.continue_sent = False
        self.disconnected: asyncio.Future | None = None

    # -------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.connections.add(self)
        self.transport = transport
        self.server = get_local_addr(transport)
        self.client = get_remote_addr(transport)
        self.disconnected = self.loop.create_future()

    def connection_lost(self, exc) -> None:
        self.connections.discard(self)
        self.closed = True
        if self.disconnected and not self.disconnected.done():
            self.disconnected.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()

    def shutdown(self) -> None:
        """Called by uvicorn on exit: close idle connections, let busy ones finish."""
        if self.busy:
            self.close_when_idle = True
        elif self.transport:
            self.transport.close()

    # -------------------------------------------------------------- parsing
    def _fail(self, status: int) -> None:
        body = b'{"error":{"message":"' + _REASONS.get(status, b"error") + b'","code":100}}'
        self._write(status, [(b"content-type", b"application/json")], body, keep_alive=False)

    def _write(self, status: int, headers: list, body: bytes, *, keep_alive: bool) -> None:
        out = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"OK"))]
        has_length = False
        for k, v in headers:
            if k.lower() == b"content-length":
                has_length = True
            out.append(k + b": " + v + b"\r\n")
        if not has_length:
            out.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        out.append(body)
        if self.transport and not self.transport.is_closing():
            self.transport.write(b"".join(out))
            if not keep_alive:
                self.transport.close()

    def _next(self) -> None:
        if self.closed:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self._fail(431)
            return
        try:
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            method, target, version = head[0].split(" ")
        except ValueError:
            self._fail(400)
            return
        headers: list[tuple[bytes, bytes]] = []
        length = 0
        conn = ""
        expect = False
        for line in head[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self._fail(400)
                return
            name, value = name.strip().lower(), value.strip()
            headers.append((name.encode("latin-1"), value.encode("latin-1")))
            if name == "content-length":
                if not value.isdigit():
                    self._fail(400)
                    return
                length = int(value)
            elif name == "transfer-encoding":
                self._fail(411)
                return
            elif name == "connection":
                conn = value.lower()
            elif name == "expect" and value.lower() == "100-continue":
                expect = True
        if length > MAX_BODY:
            self._fail(413)
            return
        total = end + 4 + length
        if len(self.buf) < total:
            if expect and not self.continue_sent and self.transport:
                self.continue_sent = True
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        body = bytes(self.buf[end + 4:total])
        del self.buf[:total]
        self.continue_sent = False
        http_version = version[5:] if version.startswith("HTTP/") else "1.1"
        keep_alive = (conn != "close") if http_version == "1.1" else (conn == "keep-alive")
        raw_path, _, query = target.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "http_version": http_version, "server": self.server, "client": self.client,
                 "scheme": "http", "method": method.upper(), "root_path": "", "path": unquote(raw_path),
                 "raw_path": raw_path.encode("latin-1"), "query_string": query.encode("latin-1"),
                 "headers": headers, "state": self.app_state.copy()}
        self.busy = True
        task = self.loop.create_task(self._run(scope, body, keep_alive))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -------------------------------------------------------------- the app
    async def _run(self, scope: dict, body: bytes, keep_alive: bool) -> None:
        state = {"status": 200, "headers": [], "chunks": [], "started": False, "done": False, "read": False}

        async def receive():
            if not state["read"]:
                state["read"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await self.disconnected
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                state["status"], state["headers"], state["started"] = message["status"], list(
                    message.get("headers", [])), True
            elif message["type"] == "http.response.body":
                state["chunks"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    state["done"] = True
                    self._write(state["status"], state["headers"], b"".join(state["chunks"]),
                                keep_alive=keep_alive and not self.close_when_idle)

        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # the app failed: 500 if nothing was sent, else drop the connection
            if not state["started"]:
                log.error("Exception in ASGI application", exc_info=exc)
                self._fail(500)
            elif self.transport:
                if not state["done"]:
                    # head + partial body, then close: what a reset mid-response looks like
                    partial = b"".join(state["chunks"])
                    if state["chunks"] and self.transport and not self.transport.is_closing():
                        head = [b"HTTP/1.1 %d %s\r\n" % (state["status"], _REASONS.get(state["status"], b"OK"))]
                        head += [k + b": " + v + b"\r\n" for k, v in state["headers"]]
                        self.transport.write(b"".join(head) + b"\r\n" + partial)
                self.transport.close()
            return
        finally:
            self.busy = False
        if not state["done"] and self.transport:
            self.transport.close()
            return
        if self.close_when_idle and self.transport:
            self.transport.close()
        elif keep_alive and self.buf:
            self._next()


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket. proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets
    that say they are TCP, and without it every answer waits ~40 ms for a delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from the moment the port is announced
    return sock


def _loop_name() -> str:
    """uvloop when installed (as the executor uses: execute/engine.run_loop): its loop and TLS
    transport cost less CPU per request; the answers are the app's either way."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def serve(app, sock: socket.socket, *, http: str = "fast", tls=None) -> None:
    """Run uvicorn on `sock` until SIGINT/SIGTERM (lifespan shutdown flushes webhooks/snapshot).

    `tls` (an `emulator.tls.Certificate`) serves https: uvicorn wraps the socket in TLS below the
    HTTP protocol, so the fast protocol and h11 both work unchanged."""
    import uvicorn

    protocol = FastHTTPProtocol if http == "fast" else "h11"
    ssl = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)} if tls is not None else {}
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", http=protocol,
                            loop=_loop_name(), proxy_headers=False, **ssl)
    uvicorn.Server(config).run(sockets=[sock])

"""Serving the emulator over a real socket with uvicorn, tuned so the server is not the bottleneck.

uvicorn's h11 protocol writes a response's head and body with two socket sends; on loopback each
send costs a syscall and a wake-up of the peer. `CoalescingH11Protocol` gathers the writes made in
one event-loop step and sends them at once (same bytes, same order), which more than doubles the
sends/s the emulator sustains on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class _CoalescingTransport:
    """Wraps an asyncio transport: `write` buffers until the end of the current loop step."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._t = transport
        self._loop = loop
        self._buf: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        self._buf.append(bytes(data))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            if not self._t.is_closing():
                self._t.write(data)

    def close(self) -> None:
        self._flush()
        self._t.close()

    def __getattr__(self, name):
        return getattr(self._t, name)


class CoalescingH11Protocol(H11Protocol):
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, asyncio.get_event_loop()))


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket. proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets
    that say they are TCP, and without it every answer waits ~40 ms for a delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def serve(app, sock: socket.socket) -> None:
    """Run uvicorn on `sock` until SIGINT/SIGTERM (lifespan shutdown flushes webhooks/snapshot)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            http=CoalescingH11Protocol, loop="asyncio")
    uvicorn.Server(config).run(sockets=[sock])

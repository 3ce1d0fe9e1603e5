"""A lean HTTP/1.1 keep-alive transport for httpx, so the executor's client costs little CPU per send.

httpx's default async stack (httpcore + anyio) spends ~0.8 ms of CPU per request here, which caps
a 2-core machine near 550 sends/s; this transport speaks HTTP/1.1 directly on asyncio streams
(TLS through `ssl`, Content-Length or chunked bodies, keep-alive pool) and keeps httpx's request
building and error classing. Failures map to the httpx exceptions the Graph client classifies:
a header holding CR, LF or NUL is refused (`LocalProtocolError`, nothing written);
a connect failure is `ConnectError` (never left), anything after the request was written is
`ReadTimeout` / `RemoteProtocolError` (ambiguous: the send may have gone out).
"""

from __future__ import annotations

import asyncio
import ssl as _ssl

import httpx

_DROP = {b"accept-encoding", b"connection", b"transfer-encoding"}
_BAD_IN_HEADER = (b"\r", b"\n", b"\0")


def _check_header(name: bytes, value: bytes, request: httpx.Request) -> None:
    """A CR, LF or NUL in a header would end it early and inject a line of the caller's text
    (RFC 9110 §5.5): refuse the request before anything is written. The message names the header,
    never its value (it may be the access token)."""
    if not name or any(b in name for b in _BAD_IN_HEADER) or b":" in name:
        raise httpx.LocalProtocolError("refused: a header name holds a line break, NUL or colon; "
                                       "nothing was sent", request=request)
    if any(b in value for b in _BAD_IN_HEADER):
        shown = name.decode("ascii", "replace")
        raise httpx.LocalProtocolError(f"refused: header {shown!r} holds a line break or NUL; nothing was sent",
                                       request=request)


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - closing a broken socket
            pass


class FastTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 64, connect_timeout: float = 10.0, read_timeout: float = 30.0,
                 ssl_context: _ssl.SSLContext | None = None):
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._ssl = ssl_context
        self._idle: dict[tuple, list[_Conn]] = {}
        self._sem: asyncio.Semaphore | None = None

    def _ssl_context(self) -> _ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def _connect(self, key: tuple, request: httpx.Request) -> _Conn:
        scheme, host, port = key
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=self._ssl_context() if scheme == "https" else None,
                                        limit=1 << 20), self.connect_timeout)
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout("connect timed out", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            import socket

            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return _Conn(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_connections)
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        key = (url.scheme, url.host, port)
        body = await request.aread()
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        for name, value in request.headers.raw:
            _check_header(name, value, request)
            if name.lower() not in _DROP:
                head.append(name + b": " + value + b"\r\n")
        if body and b"content-length" not in {n.lower() for n, _ in request.headers.raw}:
            head.append(b"Content-Length: %d\r\n" % len(body))
        head.append(b"Accept-Encoding: identity\r\n\r\n")
        data = b"".join(head) + body
        timeout = (request.extensions.get("timeout") or {}).get("read") or self.read_timeout
        async with self._sem:
            idle = self._idle.setdefault(key, [])
            conn = None
            while idle:
                c = idle.pop()
                if c.usable():
                    conn = c
                    break
                c.close()
            if conn is None:
                conn = await self._connect(key, request)
            try:
                conn.writer.write(data)
                status, headers, content, keep = await asyncio.wait_for(self._read(conn.reader), timeout)
            except asyncio.TimeoutError:
                conn.close()
                raise httpx.ReadTimeout("no answer in time", request=request) from None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                conn.close()
                raise httpx.RemoteProtocolError(f"connection broken: {type(exc).__name__}", request=request) from None
            if keep:
                idle.append(conn)
            else:
                conn.close()
        return httpx.Response(status, headers=headers, content=content, request=request)

    @staticmethod
    async def _read(reader: asyncio.StreamReader):
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError("not an HTTP/1.x answer")
        status = int(parts[1])
        headers = []
        length = None
        chunked = False
        keep = parts[0] == b"HTTP/1.1"
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(b":")
            name, value = name.strip(), value.strip()
            low = name.lower()
            if low == b"content-length":
                length = int(value)
            elif low == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
                continue
            elif low == b"connection":
                keep = value.lower() != b"close" if keep else value.lower() == b"keep-alive"
            headers.append((name, value))
        if chunked:
            buf = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                buf.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(buf)
        elif length is not None:
            content = await reader.readexactly(length)
        else:
            content = await reader.read()
            keep = False
        return status, headers, content, keep

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                c.close()
        self._idle.clear()

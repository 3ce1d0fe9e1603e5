"""The async Graph client's wire: aiohttp, chosen by measurement (benchmarks/client.py, docs/execute.md).

On a 2-core machine with 64 requests in flight, httpx's async stack (httpcore's pool) spends
~2,000 µs of CPU per send over https, its pool alone growing with the connections it holds;
aiohttp (C-accelerated llhttp parser, a connector that does not rescan its pool) ~300 µs, as little
as the hand-written HTTP/1.1 transport it replaces, and it is used for https (Meta) and plain-http
rehearsals alike, so rehearsal figures describe the production client.

The guarantees the executor's exactly-once rests on, kept here explicitly:
- TLS verified with `graph.client.tls_context` (system roots + an explicitly given rehearsal
  certificate; never off);
- connect / read timeouts (`ClientTimeout(sock_connect, sock_read)`), a connection limit;
- no redirects followed (a 307 would POST a send twice), no cookie jar, no proxy from the
  environment; aiohttp retries a request on a stale keep-alive connection only for idempotent
  methods (RFC 9112 §9.3.1.1), never a POST;
- failures become the httpx exceptions `_Core._network_error` classes: a connection that never
  opened (refused, DNS, TLS handshake, connect timeout) is `ConnectError` / `ConnectTimeout`: the
  send never left. Anything after that (read timeout, reset, a bad status line, a truncated or
  malformed body) is `ReadTimeout` / `RemoteProtocolError`: ambiguous, the send stays unknown.
  An unexpected exception is ambiguous too: nothing here ever turns a doubt into "never left".
- headers holding CR, LF or NUL are refused before a connection is taken (`LocalProtocolError`).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Mapping

import httpx

_BAD_IN_HEADER = ("\r", "\n", "\0")


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1): where only this machine answers."""
    import ipaddress

    host = host.lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_headers(headers: Mapping[str, str]) -> None:
    """A CR, LF or NUL would end a header early and inject the rest as a line of its own (RFC 9110
    §5.5): refuse before anything is written. The message names the header, never its value
    (it may be the access token)."""
    names, values = "".join(headers), "".join(headers.values())   # the clean case: a few `in` tests
    if not ("\r" in names or "\n" in names or "\0" in names or ":" in names or "" in headers
            or "\r" in values or "\n" in values or "\0" in values):
        return
    for name, value in headers.items():
        if not name or ":" in name or any(b in name for b in _BAD_IN_HEADER):
            raise httpx.LocalProtocolError("refused: a header name holds a line break, NUL or colon; "
                                           "nothing was sent")
        if any(b in value for b in _BAD_IN_HEADER):
            raise httpx.LocalProtocolError(f"refused: header {name!r} holds a line break or NUL; nothing was sent")


class AiohttpWire:
    """One aiohttp session (created on first use, inside the running loop) with a bounded pool."""

    def __init__(self, *, max_connections: int = 64, timeout: float = 30.0, connect_timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None):
        self.max_connections = max(1, max_connections)
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._ssl = ssl_context
        self._session = None
        self._urls: dict[str, object] = {}    # URL text -> parsed yarl.URL, once per path (campaign)

    def _open(self):
        import aiohttp

        if self._ssl is None:
            from migrator.graph.client import tls_context

            self._ssl = tls_context()
        connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0, ssl=self._ssl,
                                         ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, connect=None,
                                        sock_read=self.timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                              cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True,
                                              raise_for_status=False)
        return self._session

    def url(self, text: str):
        """The parsed URL, cached for query-less paths (a campaign's send path is parsed once)."""
        u = self._urls.get(text)
        if u is None:
            from yarl import URL

            u = URL(text)
            if "?" not in text and len(self._urls) < 4096:
                self._urls[text] = u
        return u

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      *, timeout: float | None = None) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body) of one request; failures as httpx exceptions (see the module doc)."""
        import aiohttp

        check_headers(headers)      # ~1 µs: a refusal here is certain, aiohttp's own check is not
        session = self._session or self._open()
        target = self.url(url)
        kw = {}
        if timeout is not None:
            kw["timeout"] = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=timeout)
        try:
            async with session.request(method, target, data=body, headers=headers, allow_redirects=False,
                                       **kw) as r:
                return r.status, r.headers, await r.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # the TCP or TLS connection never opened: nothing was written
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise httpx.ConnectTimeout("connect timed out") from None
            raise httpx.ConnectError(f"cannot connect: {_why(exc)}") from None
        except (aiohttp.SocketTimeoutError, asyncio.TimeoutError):
            raise httpx.ReadTimeout("no answer in time (the request may have arrived)") from None
        except aiohttp.ClientResponseError as exc:      # a status line or header the parser refused
            raise httpx.RemoteProtocolError(f"malformed answer: {exc.message}"[:300]) from None
        except aiohttp.ClientPayloadError as exc:       # truncated or badly chunked body
            raise httpx.RemoteProtocolError(f"incomplete answer body: {_why(exc)}"[:300]) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # disconnected, reset, anything else once the connection was open: the send may have gone out
            raise httpx.RemoteProtocolError(f"connection broken: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _why(exc: BaseException) -> str:
    """A short reason without a traceback: aiohttp's messages name host and OS error only."""
    text = str(exc) or type(exc).__name__
    return text[:200]


__all__ = ["AiohttpWire", "check_headers"]

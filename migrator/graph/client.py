"""Graph API client for the token listing and the Marketing Messages endpoints (httpx).

`GraphClient` (sync, for `pull tokens` and scripts) and `AsyncGraphClient` (for the executor's
bounded concurrency) share one request builder and one decision per attempt (`attempt.decide`:
the body, the error, or the wait before retrying), so they behave the same; only their I/O differs.
The access token is only ever sent in the `Authorization` header: never in a URL (paging follows
cursors, not Meta's `paging.next`, which embeds the token), never in logs or exception text.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from migrator.graph.attempt import Attempt, Reply, decide
from migrator.graph.errors import GraphConfigError, NetworkError
from migrator.graph.retry import RetryPolicy
from migrator.graph.secret import scrub, token_problem
from migrator.graph.usage import Usage

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v24.0"
ENV_ACCESS_TOKEN = "MIGRATOR_ACCESS_TOKEN"
ENV_PAGE_TOKEN = "MIGRATOR_PAGE_TOKEN"
# an extra certificate to trust (a rehearsal emulator's throwaway one); never a way to skip checks
ENV_CA_CERT = "MIGRATOR_CA_CERT"

# Every field Meta documents for a listed subscription token
# (https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/get-subscription-tokens).
TOKEN_FIELDS = ("notification_messages_token", "recipient_id", "creation_timestamp", "token_expiry_timestamp",
                "user_token_status", "notification_messages_reoptin", "notification_messages_timezone",
                "notification_messages_frequency", "topic_title", "next_eligible_time",
                "next_eligible_time_for_paid_messaging", "custom_audience_ids", "id")
CAMPAIGN_FIELDS = ("id,campaign{name},creative{actor_id},"
                   "adset{name,lifetime_budget,daily_budget,start_time,end_time,promoted_object{pixel_id}}")
ADS_FIELDS = ("id,adset{name,daily_budget,lifetime_budget,start_time,end_time},"
              "campaign{name,is_direct_send_campaign,is_message_campaign}")
ESTIMATE_FIELDS = ("estimate_delivery_upper_bound,estimate_delivery_lower_bound,"
                   "estimate_cost_upper_bound,estimate_cost_lower_bound")


# httpx writes a request's head and body separately; without TCP_NODELAY (which its asyncio backend
# does not always set) the body waits for the peer's delayed ACK, ~40 ms per call.
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def tls_context(ca_cert: str | os.PathLike | None = None) -> ssl.SSLContext:
    """The TLS context every client uses: the system's trusted roots with hostname checks, plus the
    certificate in `ca_cert` (else env MIGRATOR_CA_CERT) when one is given.

    That extra certificate is how a rehearsal trusts `emulator serve --tls`'s throwaway certificate:
    it is added to the trusted roots, it never replaces them, and verification stays on. There is
    no option to switch verification off. An unreadable or non-PEM file is a `GraphConfigError`.
    """
    ctx = httpx.create_ssl_context()
    path = ca_cert if ca_cert is not None else (os.environ.get(ENV_CA_CERT) or None)
    if path is not None:
        where = "--ca-cert" if ca_cert is not None else ENV_CA_CERT
        try:
            ctx.load_verify_locations(cafile=os.fspath(path))
        except (OSError, ssl.SSLError) as exc:
            raise GraphConfigError(f"{where} {os.fspath(path)}: cannot load a PEM certificate from it "
                                   f"({getattr(exc, 'strerror', None) or exc})",
                                   hint="give the certificate file `migrator emulator serve --tls` printed") from None
    return ctx


def load_access_token(*, token_file: str | os.PathLike | None = None, kind: str = "access") -> str:
    """The token from `token_file`, else env MIGRATOR_PAGE_TOKEN (kind="page") or MIGRATOR_ACCESS_TOKEN.

    A page-token lookup falls back to MIGRATOR_ACCESS_TOKEN and vice versa is not done: the listing
    wants a Page token, the MM endpoints a system-user token (as in Meta's MM examples,
    https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/send-messages).
    The token is checked before any request is made (`secret.token_problem`): a file loses one
    trailing line break (what an editor or `echo` adds), nothing else; whitespace, control or
    non-ASCII characters anywhere else are refused with a message that never shows the token.
    """
    if token_file is not None:
        try:
            raw = Path(token_file).read_bytes()
        except OSError as exc:
            raise GraphConfigError(f"cannot read token file {token_file}: {exc.strerror}",
                                   hint="give a readable file holding only the token") from None
        try:
            token = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GraphConfigError(f"token file {token_file} is not UTF-8 text",
                                   hint="save the file as plain text holding only the token") from None
        token = token.removeprefix("\ufeff")
        for end in ("\r\n", "\n"):
            if token.endswith(end):
                token = token[:-len(end)]
                break
        if not token:
            raise GraphConfigError(f"token file {token_file} is empty", hint="put the token in it, alone")
        _check_token(token, f"the token in {token_file}",
                     "the file may hold only the token and one final line break: copy the token into it again")
        return token
    names = (ENV_PAGE_TOKEN, ENV_ACCESS_TOKEN) if kind == "page" else (ENV_ACCESS_TOKEN,)
    for name in names:
        token = os.environ.get(name, "")
        if token:
            _check_token(token, f"the token in {name}", f"set {name} to the token alone, without spaces or line breaks")
            return token
    raise GraphConfigError(f"no access token: set {names[0]} or pass --token-file",
                           hint="tokens are never accepted on the command line")


def _check_token(token: str, where: str, fix: str = "give the token alone") -> None:
    problem = token_problem(token)
    if problem:
        raise GraphConfigError(f"{where} {problem}; it was not used",
                               hint=f"an access token is one line of printable ASCII without spaces; {fix}")


def act(ad_account_id: str | int) -> str:
    """`act_<ID>` whether given 123, "123" or "act_123"."""
    s = str(ad_account_id).strip()
    return s if s.startswith("act_") else f"act_{s}"


@dataclass(frozen=True)
class TokenPage:
    """One page of the token listing: its items and the cursor to the next page (None at the end)."""

    items: list[dict]
    after: str | None
    usage: Usage


@dataclass(frozen=True)
class SendResult:
    tracking_id: str
    usage: Usage
    body: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    idempotent: bool = True


class _Core:
    """Request building and response parsing shared by the sync and async clients."""

    def __init__(self, access_token: str, *, base_url: str, version: str, body_encoding: str,
                 retry: RetryPolicy | None):
        if body_encoding not in ("json", "form"):
            raise GraphConfigError(f"body_encoding must be json or form, not {body_encoding!r}")
        if not access_token:
            raise GraphConfigError("empty access token")
        _check_token(access_token, "the access token")
        self._token = access_token
        self.base_url = base_url.rstrip("/")
        self.version = version.strip("/")
        self.body_encoding = body_encoding
        self.retry = retry if retry is not None else RetryPolicy()
        self.usage = Usage()
        # request heads are the same for every call of a client: built once, copied by the wire
        auth = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        self._heads = {None: auth, "json": {**auth, "Content-Type": "application/json"},
                       "form": {**auth, "Content-Type": "application/x-www-form-urlencoded"}}

    def __repr__(self) -> str:  # never show the token
        return f"{type(self).__name__}(base_url={self.base_url!r}, version={self.version!r})"

    def scrub(self, text: str | None) -> str | None:
        """`text` without the access token or any leading piece of it (for errors shown or stored)."""
        return scrub(text, self._token)

    def _headers(self) -> dict[str, str]:
        return dict(self._heads[None])

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def _parts(self, call: _Call) -> tuple[str, dict[str, str], dict[str, str], bytes | None]:
        """(url without query, query params, headers, body) of a call; the headers are shared, never mutated."""
        params = {k: _param(v) for k, v in call.params.items() if v is not None} if call.params else {}
        content = None
        kind = None
        if call.body is not None:
            body = {k: v for k, v in call.body.items() if v is not None}
            kind = self.body_encoding
            if kind == "json":   # orjson: 1.3 µs for a template message, json.dumps 32 µs (loaded machine)
                content = orjson.dumps(body)
            else:  # as Meta's SDKs send it: nested objects JSON-encoded inside form fields
                content = str(httpx.QueryParams({k: _param(v) for k, v in body.items()})).encode()
        return self._url(call.path), params, self._heads[kind], content

    def _request(self, call: _Call) -> httpx.Request:
        url, params, headers, content = self._parts(call)
        return httpx.Request(call.method, url, params=params, headers=headers, content=content)

    def _settle(self, call: _Call, attempt: int, answer: Reply | httpx.HTTPError) -> Attempt:
        """Decide one attempt (`attempt.decide`) and keep the throttling headers it carried."""
        step = decide(answer, attempt=attempt, idempotent=call.idempotent, policy=self.retry,
                      secret=self._token)
        if step.usage is not None:
            self.usage = step.usage
        return step

    # ------------------------------------------------------------------ endpoint definitions
    @staticmethod
    def _list_tokens_call(page_id: str, *, limit: int, after: str | None, fields, filters) -> _Call:
        params = {"limit": limit, "fields": ",".join(fields), "after": after, **filters}
        return _Call("GET", f"{page_id}/notification_message_tokens", params=params)

    @staticmethod
    def _list_ads_call(ad_account_id, fields: str, limit: int, after: str | None) -> _Call:
        return _Call("GET", f"{act(ad_account_id)}/ads", params={"fields": fields, "limit": limit, "after": after})

    @staticmethod
    def _create_campaign_call(ad_account_id, *, name: str, page_id: str, daily_budget=None,
                              lifetime_budget=None, start_time=None, end_time=None, pixel_id=None,
                              bid_amount=None) -> _Call:
        body = {"name": name, "page_id": str(page_id), "daily_budget": daily_budget,
                "lifetime_budget": lifetime_budget, "start_time": start_time, "end_time": end_time,
                "pixel_id": pixel_id, "bid_amount": bid_amount}
        return _Call("POST", f"{act(ad_account_id)}/message_campaign", body=body, idempotent=False)

    @staticmethod
    def _send_call(ad_account_id, *, message_id: str, subscription_token: str, message: dict,
                   min_conversation_gap_seconds: int | None) -> _Call:
        body = {"message_id": str(message_id),
                "messenger_delivery_data": {"subscription_token": subscription_token},
                "message": message, "min_conversation_gap_seconds": min_conversation_gap_seconds}
        return _Call("POST", f"{act(ad_account_id)}/messages", body=body, idempotent=False)

    @staticmethod
    def _estimate_call(ad_account_id, *, page_id: str, daily_budget=None, lifetime_budget=None,
                       lifetime_in_days=None, fields: str = ESTIMATE_FIELDS) -> _Call:
        params = {"daily_budget": daily_budget, "lifetime_budget": lifetime_budget,
                  "lifetime_in_days": lifetime_in_days, "pacing_type": "no_pacing",
                  "is_direct_send_campaign": "true", "promoted_object": {"page_id": str(page_id)},
                  "targeting_spec": {"publisher_platforms": ["messenger"],
                                     "messenger_positions": ["marketing_messages"]},
                  "fields": fields}
        return _Call("GET", f"{act(ad_account_id)}/message_delivery_estimate", params=params)


def _param(v: Any) -> str:
    """Query/form value: nested objects and lists JSON-encoded, booleans lower-case."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _listing_page(body: dict) -> tuple[list[dict], str | None]:
    """The items of one page of a listing (objects only) and the cursor to the next page."""
    return [i for i in body.get("data") or [] if isinstance(i, dict)], _next_after(body)


def _next_after(body: dict) -> str | None:
    """The cursor for the next page; None when the listing is done.

    Graph includes `paging.next` only when another page exists; `cursors.after` may be present on
    the last page too, so it is used only alongside `next` (whose URL itself is never requested:
    it carries the access token in its query).
    """
    paging = body.get("paging") or {}
    nxt = paging.get("next")
    if not nxt:
        return None
    after = (paging.get("cursors") or {}).get("after")
    if after:
        return str(after)
    return (parse_qs(urlsplit(str(nxt)).query).get("after") or [None])[0]


class GraphClient(_Core):
    """Synchronous client. Use as a context manager so the connection pool is closed.

    Example:
        with GraphClient(load_access_token(kind="page")) as g:
            for item in g.iter_tokens("1234"):
                ...
    """

    def __init__(self, access_token: str, *, base_url: str = DEFAULT_BASE_URL,
                 version: str = DEFAULT_VERSION, timeout: float = 30.0, connect_timeout: float = 10.0,
                 max_connections: int = 10, transport: httpx.BaseTransport | None = None,
                 body_encoding: str = "json", retry: RetryPolicy | None = None,
                 ca_cert: str | os.PathLike | None = None):
        super().__init__(access_token, base_url=base_url, version=version, body_encoding=body_encoding,
                         retry=retry)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=connect_timeout), limits=limits,
                                  transport=transport or httpx.HTTPTransport(limits=limits, verify=tls_context(ca_cert),
                                                                             socket_options=_SOCKET_OPTIONS))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "GraphClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None,
             idempotent: bool | None = None) -> dict:
        """Any Graph call (path without version), with the same retries and error classing."""
        return self._run(_Call(method.upper(), path, params, body,
                               idempotent if idempotent is not None else method.upper() != "POST"))

    def _run(self, call: _Call) -> dict:
        for attempt in count(1):
            try:
                answer = Reply.of(self._http.send(self._request(call)))
            except httpx.HTTPError as exc:
                answer = exc
            step = self._settle(call, attempt, answer)
            if step.wait is None:
                return step.result()
            self.retry.sleep(step.wait)

    # ------------------------------------------------------------------ endpoints
    def list_tokens(self, page_id: str, *, limit: int = 1000, fields=TOKEN_FIELDS,
                    start_after: str | None = None, **filters) -> Iterator[TokenPage]:
        """`GET /<PAGE_ID>/notification_message_tokens`, one TokenPage per response, following cursors."""
        after = start_after
        while True:
            items, after = _listing_page(self._run(self._list_tokens_call(
                page_id, limit=limit, after=after, fields=fields, filters=filters)))
            yield TokenPage(items, after, self.usage)
            if after is None or not items:
                return

    def iter_tokens(self, page_id: str, **kw) -> Iterator[dict]:
        for page in self.list_tokens(page_id, **kw):
            yield from page.items

    def create_campaign(self, ad_account_id, *, name: str, page_id: str, **kw) -> dict:
        """`POST act_<ID>/message_campaign` -> {"id": ..., maybe "info"/"warning"}."""
        return self._run(self._create_campaign_call(ad_account_id, name=name, page_id=page_id, **kw))

    def get_campaign(self, message_id: str, *, fields: str = CAMPAIGN_FIELDS) -> dict:
        return self._run(_Call("GET", str(message_id), params={"fields": fields}))

    def delete_campaign(self, message_id: str) -> bool:
        return bool(self._run(_Call("DELETE", str(message_id))).get("success"))

    def list_campaigns(self, ad_account_id, *, fields: str = ADS_FIELDS, limit: int = 100) -> Iterator[dict]:
        """`GET act_<ID>/ads?fields=...`: every message (ad) with its campaign and ad set."""
        after = None
        while True:
            ads, after = _listing_page(self._run(self._list_ads_call(ad_account_id, fields, limit, after)))
            yield from ads
            if after is None or not ads:
                return

    def find_campaign(self, ad_account_id, name: str) -> dict | None:
        """The first message whose campaign is called `name` (the executor's idempotent lookup)."""
        for ad in self.list_campaigns(ad_account_id):
            if (ad.get("campaign") or {}).get("name") == name:
                return ad
        return None

    def send_message(self, ad_account_id, *, message_id: str, subscription_token: str, message: dict,
                     min_conversation_gap_seconds: int | None = None) -> SendResult:
        """`POST act_<ID>/messages`; returns the tracking id or raises a classified GraphError."""
        body = self._run(self._send_call(ad_account_id, message_id=message_id,
                                         subscription_token=subscription_token, message=message,
                                         min_conversation_gap_seconds=min_conversation_gap_seconds))
        return _send_result(body, self.usage)

    def delivery_estimate(self, ad_account_id, *, page_id: str, **kw) -> dict:
        """`GET act_<ID>/message_delivery_estimate` -> the first `data` row."""
        body = self._run(self._estimate_call(ad_account_id, page_id=page_id, **kw))
        return (body.get("data") or [{}])[0]


def _send_result(body: dict, usage: Usage) -> SendResult:
    tid = body.get("marketing_message_tracking_id")
    if not body.get("success") or not tid:
        raise NetworkError("send answered without success/marketing_message_tracking_id", kind="bad_response")
    return SendResult(str(tid), usage, body)


class AsyncGraphClient(_Core):
    """The same client, async, for bounded concurrency (e.g. 64 sends in flight).

    On the network it speaks through aiohttp (`graph/wire.py`, wire="aiohttp", the default): a
    fifth to a seventh of httpx's CPU per send at 64 in flight, measured in benchmarks/client.py.
    wire="httpx" keeps httpx's own stack; a `transport` (an httpx transport: the in-process
    emulator, the dry run) always goes through httpx. `max_connections` bounds the pool; callers
    bound their own task count (a semaphore) to match. `sleep` is awaited between retries (inject
    a fake in tests).
    """

    def __init__(self, access_token: str, *, base_url: str = DEFAULT_BASE_URL,
                 version: str = DEFAULT_VERSION, timeout: float = 30.0, connect_timeout: float = 10.0,
                 max_connections: int = 64, transport: httpx.AsyncBaseTransport | None = None,
                 body_encoding: str = "json", retry: RetryPolicy | None = None,
                 sleep: Callable[[float], Any] | None = None, pools: int | None = None,
                 ca_cert: str | os.PathLike | None = None, wire: str = "aiohttp"):
        super().__init__(access_token, base_url=base_url, version=version, body_encoding=body_encoding,
                         retry=retry)
        self._sleep = sleep or asyncio.sleep
        if wire not in ("aiohttp", "httpx"):
            raise GraphConfigError(f"wire must be aiohttp or httpx, not {wire!r}")
        self._wire = None
        self._pools: list[httpx.AsyncClient] = []
        if transport is None and wire == "aiohttp":
            from migrator.graph.wire import AiohttpWire, check_headers

            for heads in self._heads.values():
                check_headers(heads)       # once here; the wire checks again, cheaply, per request
            self._wire = AiohttpWire(max_connections=max_connections, timeout=timeout,
                                     connect_timeout=connect_timeout, ssl_context=tls_context(ca_cert))
            return
        # httpcore's pool does work proportional to its connections on every request: 64 connections
        # in one pool cost ~4 ms of CPU per call here, 8 pools of 8 ~1.5 ms. Requests go round-robin.
        n = 1 if transport is not None else max(1, pools or max_connections // 8)
        per = max(1, -(-max_connections // n))
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        ssl_context = None if transport is not None else tls_context(ca_cert)  # ~0.1 s each: share
        self._pools = [httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=connect_timeout), limits=limits,
                                         transport=transport or httpx.AsyncHTTPTransport(
                                             limits=limits, socket_options=_SOCKET_OPTIONS, verify=ssl_context))
                       for _ in range(n)]
        self._next_pool = 0

    def _pool(self) -> httpx.AsyncClient:
        self._next_pool = (self._next_pool + 1) % len(self._pools)
        return self._pools[self._next_pool]

    async def aclose(self) -> None:
        for p in self._pools:
            await p.aclose()
        if self._wire is not None:
            await self._wire.aclose()

    async def __aenter__(self) -> "AsyncGraphClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def call(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None,
                   idempotent: bool | None = None) -> dict:
        return await self._run(_Call(method.upper(), path, params, body,
                                     idempotent if idempotent is not None else method.upper() != "POST"))

    async def _run(self, call: _Call) -> dict:
        for attempt in count(1):
            try:
                if self._wire is not None:
                    url, params, headers, content = self._parts(call)
                    if params:
                        url += "?" + str(httpx.QueryParams(params))
                    answer = Reply(*await self._wire.request(call.method, url, headers, content))
                else:
                    answer = Reply.of(await self._pool().send(self._request(call)))
            except httpx.HTTPError as exc:
                answer = exc
            step = self._settle(call, attempt, answer)
            if step.wait is None:
                return step.result()
            slept = self._sleep(step.wait)
            if asyncio.iscoroutine(slept):
                await slept

    async def list_tokens(self, page_id: str, *, limit: int = 1000, fields=TOKEN_FIELDS,
                          start_after: str | None = None, **filters) -> AsyncIterator[TokenPage]:
        after = start_after
        while True:
            items, after = _listing_page(await self._run(self._list_tokens_call(
                page_id, limit=limit, after=after, fields=fields, filters=filters)))
            yield TokenPage(items, after, self.usage)
            if after is None or not items:
                return

    async def create_campaign(self, ad_account_id, *, name: str, page_id: str, **kw) -> dict:
        return await self._run(self._create_campaign_call(ad_account_id, name=name, page_id=page_id, **kw))

    async def get_campaign(self, message_id: str, *, fields: str = CAMPAIGN_FIELDS) -> dict:
        return await self._run(_Call("GET", str(message_id), params={"fields": fields}))

    async def delete_campaign(self, message_id: str) -> bool:
        return bool((await self._run(_Call("DELETE", str(message_id)))).get("success"))

    async def list_campaigns(self, ad_account_id, *, fields: str = ADS_FIELDS,
                             limit: int = 100) -> AsyncIterator[dict]:
        after = None
        while True:
            ads, after = _listing_page(await self._run(self._list_ads_call(ad_account_id, fields, limit, after)))
            for ad in ads:
                yield ad
            if after is None or not ads:
                return

    async def find_campaign(self, ad_account_id, name: str) -> dict | None:
        async for ad in self.list_campaigns(ad_account_id):
            if (ad.get("campaign") or {}).get("name") == name:
                return ad
        return None

    async def send_message(self, ad_account_id, *, message_id: str, subscription_token: str, message: dict,
                           min_conversation_gap_seconds: int | None = None) -> SendResult:
        body = await self._run(self._send_call(ad_account_id, message_id=message_id,
                                               subscription_token=subscription_token, message=message,
                                               min_conversation_gap_seconds=min_conversation_gap_seconds))
        return _send_result(body, self.usage)

    async def delivery_estimate(self, ad_account_id, *, page_id: str, **kw) -> dict:
        body = await self._run(self._estimate_call(ad_account_id, page_id=page_id, **kw))
        return (body.get("data") or [{}])[0]


__all__ = ["AsyncGraphClient", "GraphClient", "SendResult", "TokenPage", "act", "load_access_token"]

"""One attempt of a Graph call, decided: the body to return, the error to raise, or the wait
before trying again.

Both clients send the same way and differ only in how they wait for I/O (`httpx.Client` or
`httpx.AsyncClient`, `time.sleep` or an awaited sleep). Everything between "an answer came back"
(a response, or the transport's exception) and "what next" lives here, as pure functions of that
answer, the attempt number and the retry policy, so the sync and async clients cannot drift apart.
The access token is given only so that it can be scrubbed from error text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import httpx
import orjson

from migrator.graph.errors import GraphError, NetworkError, error_from_envelope
from migrator.graph.retry import RetryPolicy
from migrator.graph.secret import scrub
from migrator.graph.usage import Usage, parse_usage


class Reply(NamedTuple):
    """What came back over the wire, whichever library carried it."""

    status: int
    headers: Mapping[str, str]     # looked up in lower case (httpx.Headers and the like)
    content: bytes

    @classmethod
    def of(cls, response: httpx.Response) -> "Reply":
        return cls(response.status_code, response.headers, response.content)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt came to.

    Exactly one of `body` and `error` is set. `wait` is set only with an error that is worth
    another attempt: the seconds to sleep first. `usage` is what the response's throttling
    headers said (None when no response came back: the client keeps the last one it saw).
    """

    body: dict | None = None
    error: GraphError | None = None
    wait: float | None = None
    usage: Usage | None = None

    def result(self) -> dict:
        """The body, or raise the error (for an attempt that is not retried)."""
        if self.error is not None:
            raise self.error
        return self.body  # type: ignore[return-value]


def decide(answer: Reply | httpx.HTTPError, *, attempt: int, idempotent: bool,
           policy: RetryPolicy, secret: str) -> Attempt:
    """Decide attempt number `attempt` (1-based) of a call from what came back.

    `answer` is the reply, or the `httpx.HTTPError` the transport raised instead. A failure
    is retried when `policy.delay` gives a wait (transient class, attempts left, a wait it is
    willing to sleep, and never an ambiguous failure of a non-idempotent call such as a send).
    """
    if isinstance(answer, httpx.HTTPError):
        error: GraphError = network_error(answer, secret)
        usage = None
    else:
        usage = parse_usage(answer.headers)
        try:
            return Attempt(body=read_body(answer.status, answer.content, secret), usage=usage)
        except GraphError as err:
            error = err
    return Attempt(error=error, wait=policy.delay(attempt, error, idempotent=idempotent), usage=usage)


def read_body(status: int, content: bytes, secret: str) -> dict:
    """The JSON object of a successful reply, or raise the GraphError it amounts to.

    A list body is wrapped as `{"data": [...]}`. A failure with Graph's error envelope becomes
    its classified error; one without (a proxy's 502 page, a bare 429, a body that is not JSON)
    a `NetworkError` of the matching kind.
    """
    try:
        body: Any = orjson.loads(content)   # ~10x json.loads for an answer; UTF-8, as Graph sends
    except ValueError:                      # orjson.JSONDecodeError is a ValueError
        body = None
    if status < 400 and isinstance(body, (dict, list)):
        return body if isinstance(body, dict) else {"data": body}
    err = error_from_envelope(body, http_status=status, scrub=(secret,))
    if err is not None:
        raise err
    if status >= 500:
        raise NetworkError(f"HTTP {status} from Graph without an error body", kind="http_5xx",
                           http_status=status)
    if status == 429:
        raise NetworkError("HTTP 429 without an error body", kind="http_429", http_status=status)
    if status >= 400:
        raise NetworkError(f"HTTP {status} from Graph without an error body", kind="http_4xx",
                           http_status=status)
    raise NetworkError(f"HTTP {status}: response is not JSON", kind="bad_response", http_status=status)


def network_error(exc: httpx.HTTPError, secret: str) -> NetworkError:
    """The transport's exception as a classified `NetworkError` (connect, timeout, reset, ...)."""
    # str(exc) can quote a header (httpx: "Illegal header value b'Bearer ...'"): scrub it.
    text = scrub(f"{type(exc).__name__}: {exc}", secret)
    if isinstance(exc, httpx.LocalProtocolError):   # refused before anything was written
        return NetworkError(text, kind="refused_locally")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        kind = "connect"
    elif isinstance(exc, httpx.TimeoutException):
        kind = "timeout"
    else:
        kind = "reset"
    return NetworkError(text, kind=kind)


__all__ = ["Attempt", "Reply", "decide", "network_error", "read_body"]

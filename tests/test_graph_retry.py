"""One retry decision for both clients: the same answers lead to the same calls, waits and result.

Each case scripts what the transport answers, attempt by attempt (httpx.MockTransport: a
response, or the exception httpx would raise), and runs the same public call through
`GraphClient` and `AsyncGraphClient`. Both must send as often, sleep as long and end the same
way; the property test does this for any script.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.graph import AsyncGraphClient, ErrorClass, GraphClient, NetworkError, RetryLater, RetryPolicy

TOKEN = "EAAB-retry-SECRET-token"
USAGE = {"X-App-Usage": '{"call_count":91,"total_time":10,"total_cputime":10}'}


def ok_send():
    return httpx.Response(200, json={"success": True, "marketing_message_tracking_id": "t-1"})


def ok_read():
    return httpx.Response(200, json={"id": "42"})


def envelope(code, *, status=400, remaining=None, transient=None, headers=None, message="failed"):
    error = {"code": code, "message": message}
    if remaining is not None:
        error["error_data"] = {"remaining_seconds": remaining}
    if transient is not None:
        error["is_transient"] = transient
    return httpx.Response(status, json={"error": error}, headers=headers)


# what the transport may answer on one attempt (a name, for readable property-test output)
ANSWERS = {
    "ok": None,                                   # the call's own success body
    "app_limit": lambda: envelope(4, transient=True),                     # retry_later, 60 s
    "unknown_transient": lambda: envelope(2, status=500, transient=True),  # retry_later
    "rate_limit_wait": lambda: envelope(2300080, remaining=7),            # retry_later, 60 s
    "warmup": lambda: envelope(2300012),                                  # retry_later, 600 s
    "cadence": lambda: envelope(2300035),                                 # recipient_later
    "expired_token": lambda: envelope(190),                               # account_fatal
    "bare_429": lambda: httpx.Response(429, content=b""),                 # http_429, 60 s
    "bare_502": lambda: httpx.Response(502, content=b"<html>bad gateway</html>"),  # ambiguous
    "bare_404": lambda: httpx.Response(404, content=b"nope"),             # fix_payload
    "not_json": lambda: httpx.Response(200, content=b"<html>"),           # bad_response, ambiguous
    "connect": httpx.ConnectError("refused"),                             # never left
    "timeout": httpx.ReadTimeout("slow"),                                 # ambiguous
    "reset": httpx.RemoteProtocolError("peer closed"),                    # ambiguous
    "refused_locally": httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}'"),
}


AMBIGUOUS = ("timeout", "reset", "bare_502", "not_json")   # may have been processed by Meta


@dataclass
class Run:
    """What one call came to: how often it was sent, the waits, the body or the error."""

    calls: int = 0
    sent: list[bytes] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    body: object = None
    error: Exception | None = None
    usage_pct: float | None = None

    def outcome(self):
        """Comparable across the clients (exception objects are not equal by value)."""
        err = self.error
        return (self.calls, self.slept, self.body, self.usage_pct,
                None if err is None else (type(err), str(err), getattr(err, "kind", None)))


def answered(script, calls):
    """The script's answer to each of `calls` attempts (the last answer repeats)."""
    return [script[min(k, len(script)) - 1] for k in range(1, calls + 1)]


def _handler(script, run: Run, *, send: bool, usage_first: bool):
    def handle(request: httpx.Request):
        run.calls += 1
        run.sent.append(request.content)
        name = answered(script, run.calls)[-1]
        answer = ANSWERS[name]
        if isinstance(answer, Exception):
            raise answer
        response = (ok_send() if send else ok_read()) if name == "ok" else answer()
        if usage_first and run.calls == 1:   # only the first answer carries throttling headers
            response = httpx.Response(response.status_code, content=response.content, headers=USAGE)
        return response
    return handle


def _policy(seed, **kw):
    return dict(max_attempts=kw.get("max_attempts", 4), base_delay=kw.get("base_delay", 0.5),
                max_delay=kw.get("max_delay", 30.0), max_wait=kw.get("max_wait", 120.0),
                rng=random.Random(seed))


def run_sync(script, *, send: bool, seed: int = 0, usage_first: bool = False, **policy) -> Run:
    run = Run()
    handler = _handler(script, run, send=send, usage_first=usage_first)
    with GraphClient(TOKEN, base_url="https://graph.test", transport=httpx.MockTransport(handler),
                     retry=RetryPolicy(**_policy(seed, **policy), sleep=run.slept.append)) as g:
        try:
            run.body = _call_sync(g, send)
        except Exception as exc:   # noqa: BLE001 - the error is the outcome under test
            run.error = exc
        run.usage_pct = g.usage.max_pct if g.usage.seen else None
    return run


def run_async(script, *, send: bool, seed: int = 0, usage_first: bool = False, **policy) -> Run:
    run = Run()
    handler = _handler(script, run, send=send, usage_first=usage_first)

    async def sleep(seconds):
        run.slept.append(seconds)

    async def main():
        async with AsyncGraphClient(TOKEN, base_url="https://graph.test",
                                    transport=httpx.MockTransport(handler),
                                    retry=RetryPolicy(**_policy(seed, **policy)), sleep=sleep) as g:
            try:
                run.body = await _call_async(g, send)
            except Exception as exc:   # noqa: BLE001
                run.error = exc
            run.usage_pct = g.usage.max_pct if g.usage.seen else None

    asyncio.run(main())
    return run


def _call_sync(g, send):
    if send:
        return g.send_message("9", message_id="77", subscription_token="sub", message={"text": "x"}).tracking_id
    return g.get_campaign("42")


async def _call_async(g, send):
    if send:
        return (await g.send_message("9", message_id="77", subscription_token="sub",
                                     message={"text": "x"})).tracking_id
    return await g.get_campaign("42")


CLIENTS = pytest.mark.parametrize("client", [run_sync, run_async], ids=["sync", "async"])


@CLIENTS
def test_a_transient_error_is_retried_after_its_wait_and_then_succeeds(client):
    r = client(["app_limit", "rate_limit_wait", "ok"], send=True)
    assert r.error is None and r.body == "t-1"
    assert r.calls == 3 and r.slept == [60.0, 60.0]        # the table's wait beats the jitter
    assert r.sent[0] == r.sent[1] == r.sent[2]             # the same request each time


@CLIENTS
def test_a_wait_longer_than_the_policy_sleeps_through_goes_back_to_the_caller(client):
    r = client(["warmup"], send=True, max_wait=120)
    assert isinstance(r.error, RetryLater) and r.error.wait_seconds == 600
    assert r.calls == 1 and r.slept == []


@pytest.mark.parametrize("name,cls", [("cadence", ErrorClass.RECIPIENT_LATER),
                                      ("expired_token", ErrorClass.ACCOUNT_FATAL),
                                      ("bare_404", ErrorClass.FIX_PAYLOAD)])   # a NetworkError, classed
@CLIENTS
def test_a_class_that_is_not_transient_is_raised_at_once(client, name, cls):
    r = client([name], send=False)
    assert r.error.classification.error_class is cls and r.calls == 1 and r.slept == []


@CLIENTS
def test_attempts_run_out_and_the_last_error_is_raised(client):
    r = client(["unknown_transient", "unknown_transient", "bare_429"], send=False, max_attempts=3,
               base_delay=1, max_delay=4)
    assert isinstance(r.error, NetworkError) and r.error.kind == "http_429"
    assert r.calls == 3 and len(r.slept) == 2
    assert 0 <= r.slept[0] <= 1 and 0 <= r.slept[1] <= 2    # full jitter: base_delay * 2**(n-1)


@pytest.mark.parametrize("name", AMBIGUOUS)
@CLIENTS
def test_an_ambiguous_failure_of_a_send_is_never_sent_again_but_a_read_is(client, name):
    send = client([name], send=True)
    assert isinstance(send.error, NetworkError) and send.error.ambiguous
    assert send.calls == 1 and send.slept == []
    read = client([name, "ok"], send=False)
    assert read.error is None and read.body == {"id": "42"} and read.calls == 2 and len(read.slept) == 1


@CLIENTS
def test_a_send_that_never_left_is_sent_again(client):
    r = client(["connect", "ok"], send=True)
    assert r.error is None and r.body == "t-1" and r.calls == 2
    assert 0 <= r.slept[0] <= 0.5                           # full jitter within base_delay


@CLIENTS
def test_a_request_refused_locally_is_not_retried_and_never_shows_the_token(client):
    r = client(["refused_locally", "ok"], send=False)
    assert isinstance(r.error, NetworkError) and r.error.kind == "refused_locally"
    assert r.calls == 1 and TOKEN not in str(r.error) and "Bearer" in str(r.error)


@CLIENTS
def test_usage_is_kept_from_the_last_response_not_lost_to_a_network_failure(client):
    r = client(["app_limit", "timeout", "ok"], send=False, usage_first=True)
    assert r.error is None and r.calls == 3
    assert r.usage_pct is None      # the successful last response carried no usage headers
    r = client(["app_limit", "timeout"], send=False, usage_first=True, max_attempts=2)
    assert isinstance(r.error, NetworkError) and r.usage_pct == 91   # the timeout left it as it was


@given(script=st.lists(st.sampled_from(sorted(ANSWERS)), min_size=1, max_size=6),
       send=st.booleans(), seed=st.integers(0, 2**16), max_attempts=st.integers(1, 5),
       max_wait=st.sampled_from([0, 30, 60, 600]))
def test_both_clients_decide_every_script_alike(script, send, seed, max_attempts, max_wait):
    kw = dict(send=send, seed=seed, max_attempts=max_attempts, max_wait=max_wait)
    sync, async_ = run_sync(script, **kw), run_async(script, **kw)
    assert sync.outcome() == async_.outcome()
    assert sync.calls <= max_attempts and len(sync.slept) == sync.calls - 1
    assert sync.error is None or TOKEN not in str(sync.error)
    got = answered(script, sync.calls)
    assert (sync.error is None) == (got[-1] == "ok")
    if send:   # a send goes out again only when no earlier attempt may have been processed
        assert not any(name in AMBIGUOUS for name in got[:-1])


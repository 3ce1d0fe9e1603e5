"""The client on a fake transport: token placement, encodings, paging, errors, retries, usage."""

from __future__ import annotations

import asyncio
import json
import random
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.graph import (NO_RETRY, AccountFatal, AsyncGraphClient, GraphClient, GraphConfigError,
                            NetworkError, RecipientLater, RetryLater, RetryPolicy, load_access_token,
                            parse_usage)

TOKEN = "EAAB-very-SECRET-token"


def client(handler, **kw):
    kw.setdefault("retry", NO_RETRY)
    return GraphClient(TOKEN, base_url="https://graph.test", transport=httpx.MockTransport(handler), **kw)


def test_token_only_in_the_authorization_header():
    seen = []

    def handler(req: httpx.Request):
        seen.append(req)
        return httpx.Response(200, json={"id": "42"})

    with client(handler) as g:
        g.create_campaign("act_9", name="n", page_id="1", lifetime_budget=3000)
        g.get_campaign("42")
    for req in seen:
        assert req.headers["authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in str(req.url) and TOKEN.encode() not in req.content
    assert seen[0].url.path == "/v24.0/act_9/message_campaign"
    assert TOKEN not in repr(g)


def test_json_and_form_bodies():
    bodies = []

    def handler(req):
        bodies.append((req.headers["content-type"], req.content))
        return httpx.Response(200, json={"success": True, "marketing_message_tracking_id": "t-1"})

    msg = {"text": "New stock is in."}
    for enc in ("json", "form"):
        with client(handler, body_encoding=enc) as g:
            r = g.send_message("9", message_id="77", subscription_token="sub-tok", message=msg,
                               min_conversation_gap_seconds=3600)
            assert r.tracking_id == "t-1"
    (ct1, b1), (ct2, b2) = bodies
    assert ct1 == "application/json" and json.loads(b1) == {
        "message_id": "77", "messenger_delivery_data": {"subscription_token": "sub-tok"}, "message": msg,
        "min_conversation_gap_seconds": 3600}
    assert ct2 == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(b2.decode()).items()}
    assert json.loads(form["messenger_delivery_data"]) == {"subscription_token": "sub-tok"}
    assert json.loads(form["message"]) == msg and form["message_id"] == "77"


def test_paging_follows_cursors_not_next_urls():
    pages = {None: (["a", "b"], "c1"), "c1": (["c", "d"], "c2"), "c2": (["e"], None)}
    calls = []

    def handler(req):
        calls.append(req.url)
        after = req.url.params.get("after")
        items, nxt = pages[after]
        body = {"data": [{"notification_messages_token": t} for t in items],
                "paging": {"cursors": {"before": "x", "after": nxt or "end"}}}
        if nxt:
            body["paging"]["next"] = f"https://graph.test/v24.0/1/notification_message_tokens?access_token={TOKEN}&after={nxt}"
        return httpx.Response(200, json=body)

    with client(handler) as g:
        toks = [i["notification_messages_token"] for i in g.iter_tokens("1")]
    assert toks == ["a", "b", "c", "d", "e"]
    assert all(TOKEN not in str(u) for u in calls)
    assert calls[0].params["limit"] == "1000" and "notification_messages_timezone" in calls[0].params["fields"]


def test_graph_errors_raise_classified_exceptions_without_the_token():
    def handler(req):
        return httpx.Response(400, json={"error": {"message": f"bad {TOKEN}", "type": "OAuthException",
                                                   "code": 190, "fbtrace_id": "F1"}})

    with client(handler) as g, pytest.raises(AccountFatal) as ei:
        g.get_campaign("1")
    assert TOKEN not in str(ei.value) and ei.value.fbtrace_id == "F1"


@pytest.mark.parametrize("exc,kind,ambiguous", [
    (httpx.ConnectError("refused"), "connect", False), (httpx.ReadTimeout("slow"), "timeout", True),
    (httpx.RemoteProtocolError("peer closed"), "reset", True), (httpx.ReadError("reset"), "reset", True)])
def test_network_failures_are_classed(exc, kind, ambiguous):
    def handler(req):
        raise exc

    with client(handler) as g, pytest.raises(NetworkError) as ei:
        g.send_message("1", message_id="2", subscription_token="t", message={"text": "x"})
    assert ei.value.kind == kind and ei.value.ambiguous is ambiguous


@pytest.mark.parametrize("status,body,kind", [(502, b"<html>bad gateway</html>", "http_5xx"),
                                              (429, b"", "http_429"), (404, b"nope", "http_4xx"),
                                              (200, b"not json", "bad_response")])
def test_http_failures_without_envelope(status, body, kind):
    with client(lambda req: httpx.Response(status, content=body)) as g, pytest.raises(NetworkError) as ei:
        g.get_campaign("1")
    assert ei.value.kind == kind


def test_retries_honour_wait_with_injected_sleep_and_rng():
    slept, n = [], {"calls": 0}

    def handler(req):
        n["calls"] += 1
        if n["calls"] < 3:
            return httpx.Response(400, json={"error": {"code": 2300080, "message": "token query rate limit",
                                                       "error_data": {"remaining_seconds": 7}}})
        return httpx.Response(200, json={"data": []})

    policy = RetryPolicy(max_attempts=4, base_delay=1, max_delay=4, max_wait=120, rng=random.Random(1),
                         sleep=slept.append)
    with client(handler, retry=policy) as g:
        assert list(g.iter_tokens("1")) == []
    assert n["calls"] == 3 and slept == [60.0, 60.0]  # max(table 60 s, remaining 7 s, jitter <= 2 s)


def test_retry_gives_up_when_the_wait_is_too_long_or_not_transient():
    slept = []
    policy = RetryPolicy(max_wait=60, sleep=slept.append, rng=random.Random(0))

    def warmup(req):
        return httpx.Response(400, json={"error": {"code": 2300012, "message": "still being populated"}})

    with client(warmup, retry=policy) as g, pytest.raises(RetryLater) as ei:
        g.send_message("1", message_id="2", subscription_token="t", message={"text": "x"})
    assert ei.value.wait_seconds == 600 and ei.value.classification.warmup and slept == []

    def cadence(req):
        return httpx.Response(400, json={"error": {"code": 2300035, "message": "too soon"}})

    with client(cadence, retry=policy) as g, pytest.raises(RecipientLater):
        g.send_message("1", message_id="2", subscription_token="t", message={"text": "x"})
    assert slept == []


def test_ambiguous_failures_of_a_send_are_not_retried_but_reads_are():
    calls = {"n": 0}

    def handler(req):
        calls["n"] += 1
        raise httpx.ReadTimeout("slow")

    slept = []
    policy = RetryPolicy(max_attempts=3, sleep=slept.append, rng=random.Random(0))
    with client(handler, retry=policy) as g:
        with pytest.raises(NetworkError):
            g.send_message("1", message_id="2", subscription_token="t", message={"text": "x"})
        assert calls["n"] == 1
        with pytest.raises(NetworkError):
            g.get_campaign("2")
        assert calls["n"] == 4 and len(slept) == 2
        assert all(0 <= s <= 1.0 for s in slept)  # full jitter within base * 2**(n-1)


def test_backoff_is_bounded_and_jittered():
    p = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=8, rng=random.Random(3))
    err = NetworkError("x", kind="connect")
    delays = [p.delay(n, err, idempotent=False) for n in range(1, 10)]
    assert all(0 <= d <= 8 for d in delays) and p.delay(10, err, idempotent=False) is None
    assert len(set(delays)) > 5


def test_usage_headers_expose_max_utilisation_and_regain_time():
    h = httpx.Headers({
        "X-App-Usage": '{"call_count":28,"total_time":25,"total_cputime":25}',
        "X-Ad-Account-Usage": '{"acc_id_util_pct":9.67,"reset_time_duration":100}',
        "X-Business-Use-Case-Usage": '{"123":[{"type":"ads_management","call_count":95,"total_cputime":20,'
                                     '"total_time":20,"estimated_time_to_regain_access":3}]}'})
    u = parse_usage(h)
    assert u.max_pct == 95 and u.regain_seconds == 180 and u.throttled
    assert parse_usage(httpx.Headers({"X-Ad-Account-Usage": '{"acc_id_util_pct":100,"reset_time_duration":40}'})
                       ).regain_seconds == 40
    assert not parse_usage(httpx.Headers({})).seen

    def handler(req):
        return httpx.Response(200, json={"data": []}, headers=h)

    with client(handler) as g:
        list(g.iter_tokens("1"))
        assert g.usage.max_pct == 95


@given(st.dictionaries(st.sampled_from(["x-app-usage", "x-ad-account-usage", "x-business-use-case-usage"]),
                       st.one_of(st.text(max_size=40), st.just('{"a":[{"call_count":"x"}]}'),
                                 st.just('[1,2]'), st.just('{"acc_id_util_pct":null}'))))
def test_usage_parser_never_crashes(headers):
    u = parse_usage(headers)
    assert u.max_pct >= 0 or u.max_pct < 0  # a number


def test_access_token_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("MIGRATOR_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("MIGRATOR_PAGE_TOKEN", raising=False)
    with pytest.raises(GraphConfigError) as ei:
        load_access_token(kind="page")
    assert "MIGRATOR_PAGE_TOKEN" in str(ei.value)
    monkeypatch.setenv("MIGRATOR_ACCESS_TOKEN", "sys")
    assert load_access_token() == "sys" and load_access_token(kind="page") == "sys"
    monkeypatch.setenv("MIGRATOR_PAGE_TOKEN", "page")
    assert load_access_token(kind="page") == "page"
    f = tmp_path / "tok"
    f.write_text("file-token\n")
    assert load_access_token(token_file=f) == "file-token"
    f.write_text(" file-token\n")              # whitespace is refused, not silently trimmed (14.3)
    with pytest.raises(GraphConfigError):
        load_access_token(token_file=f)
    f.write_text("")
    with pytest.raises(GraphConfigError):
        load_access_token(token_file=f)
    with pytest.raises(GraphConfigError):
        load_access_token(token_file=tmp_path / "missing")


def test_async_client_bounded_concurrency_and_fake_sleep():
    in_flight, peak, slept = {"n": 0}, {"n": 0}, []

    async def handler(req):
        in_flight["n"] += 1
        peak["n"] = max(peak["n"], in_flight["n"])
        await asyncio.sleep(0)
        in_flight["n"] -= 1
        if req.url.path.endswith("/ads"):
            return httpx.Response(400, json={"error": {"code": 4, "message": "app limit", "is_transient": True}})
        return httpx.Response(200, json={"success": True, "marketing_message_tracking_id": "t"})

    async def fake_sleep(s):
        slept.append(s)

    async def main():
        policy = RetryPolicy(max_attempts=2, rng=random.Random(0))
        async with AsyncGraphClient(TOKEN, base_url="https://graph.test", transport=httpx.MockTransport(handler),
                                    retry=policy, sleep=fake_sleep, max_connections=8) as g:
            sem = asyncio.Semaphore(8)

            async def one(i):
                async with sem:
                    return await g.send_message("1", message_id="2", subscription_token=f"t{i}",
                                                message={"text": "x"})

            results = await asyncio.gather(*(one(i) for i in range(50)))
            with pytest.raises(RetryLater):
                await g.find_campaign("1", "nope")
            return results

    results = asyncio.run(main())
    assert len(results) == 50 and peak["n"] <= 8 and slept == [60.0]

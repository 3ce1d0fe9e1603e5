"""Graph batch requests against the in-process emulator: per-call answers, partial failures,
Meta's 50-call limit, nulls for calls that did not complete, each call counted on its own."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from _emu import ACT, PAGE, make
from migrator.emulator import EmulatorConfig, SyncEmulatorTransport

TOKEN = "sys-user-token-SECRET"


def _post_batch(app, calls, **extra):
    t = SyncEmulatorTransport(app)
    try:
        with httpx.Client(transport=t, base_url="http://emulator.test") as c:
            body = urlencode({"batch": json.dumps(calls), "access_token": TOKEN, **extra})
            return c.post("/v24.0/", content=body,
                          headers={"content-type": "application/x-www-form-urlencoded"})
    finally:
        t.close()


def _accepted(app) -> list[str]:
    """The tokens the emulator accepted sends for, from its own record (`/_emulator/sends`)."""
    t = SyncEmulatorTransport(app)
    try:
        with httpx.Client(transport=t, base_url="http://emulator.test") as c:
            return [s["token"] for s in c.get("/_emulator/sends").json()["data"]]
    finally:
        t.close()


def _campaign(app) -> str:
    r = _post_batch(app, [{"method": "POST", "relative_url": f"act_{ACT}/message_campaign",
                           "body": urlencode({"name": "Batch", "page_id": PAGE,
                                              "daily_budget": 100000})}])
    entry = r.json()[0]
    assert entry["code"] == 200, entry
    return json.loads(entry["body"])["id"]


def _send(cid: str, token: str) -> dict:
    body = urlencode({"message_id": cid,
                      "messenger_delivery_data": json.dumps({"subscription_token": token}),
                      "message": json.dumps({"text": "New stock is in."})})
    return {"method": "POST", "relative_url": f"act_{ACT}/messages", "body": body}


def test_each_call_is_answered_on_its_own_and_one_failure_spares_the_others():
    app, emu, clock = make()
    cid = _campaign(app)
    r = _post_batch(app, [_send(cid, "tok-us-1"), _send(cid, "tok-stop"), _send(cid, "tok-us-2")])
    assert r.status_code == 200
    answers = r.json()
    assert [a["code"] for a in answers] == [200, 400, 200]
    ok = json.loads(answers[0]["body"])
    assert ok["success"] is True and ok["marketing_message_tracking_id"]
    assert json.loads(answers[1]["body"])["error"]["code"] == 2300034  # the subscriber stopped
    assert {"name": "Content-Type", "value": "application/json"} in answers[0]["headers"]
    assert sorted(_accepted(app)) == ["tok-us-1", "tok-us-2"]  # the good calls only


def test_more_than_fifty_calls_are_refused_whole():
    app, emu, clock = make()
    cid = _campaign(app)
    r = _post_batch(app, [_send(cid, "tok-us-1")] * 51)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == 100
    assert _accepted(app) == []


def test_a_call_that_does_not_complete_is_null_and_was_not_taken():
    """Half of all calls time out before they are processed (seeded): across seeds some batches
    get through with null entries, and a null entry's send never reached the emulator's record."""
    nulls = 0
    for seed in range(12):
        app, emu, clock = make(EmulatorConfig(warmup_seconds=0, seed=seed))
        cid = _campaign(app)
        emu.config.faults.timeout_rate = 0.5
        emu.config.faults.timeout_after_processing = False
        tokens = ["tok-us-1", "tok-us-2", "tok-us-3"]
        try:
            r = _post_batch(app, [_send(cid, t) for t in tokens])
        except httpx.ReadTimeout:
            continue  # the batch request itself timed out
        sent = set(_accepted(app))
        for token, answer in zip(tokens, r.json()):
            if answer is None:
                nulls += 1
                assert token not in sent
            else:
                assert answer["code"] == 200 and token in sent
    assert nulls > 0


def test_each_call_counts_as_a_request_and_headers_can_be_left_out():
    app, emu, clock = make()
    cid = _campaign(app)
    before = emu.requests
    r = _post_batch(app, [_send(cid, "tok-us-1"), _send(cid, "tok-us-2")], include_headers="false")
    assert emu.requests - before == 3  # the batch itself and each of its two calls
    assert all("headers" not in a for a in r.json())


def test_references_between_calls_are_refused_not_ignored():
    app, emu, clock = make()
    r = _post_batch(app, [{"method": "GET", "relative_url": "{result=first:$.id}"}])
    assert r.json()[0]["code"] == 400
    assert "not supported" in json.loads(r.json()[0]["body"])["error"]["message"]


def test_a_malformed_batch_is_a_graph_error():
    app, emu, clock = make()
    r = _post_batch(app, {"not": "a list"})
    assert r.status_code == 400 and r.json()["error"]["code"] == 100

"""Preflight details say what Meta said (its code and message) in plain words, never the Graph
client's Python class or error class (`[fix_payload]`, `ConnectError:`)."""

from __future__ import annotations

import json
import re

import pytest

from migrator.graph import NetworkError, error_from_envelope
from migrator.preflight.read import in_words
from _preflight import ACT_BR, PAGE_US, SYS_TOKEN, check, healthy, status, two_pages

CLIENT_WORDS = re.compile(r"\[(retry_later|recipient_later|recipient_never|stop_campaign|fix_payload|"
                          r"account_fatal)\]|Graph error|ConnectError|ReadTimeout|RemoteProtocolError|\[Errno")


def test_a_refused_read_shows_metas_code_and_message_only(ws, tmp_path):
    _, plan_path = two_pages(ws, tmp_path)
    a = healthy()
    a.ad_accounts[ACT_BR].visible = False
    a.pages[PAGE_US].visible = False
    r = check(ws, plan_path, a, tmp=tmp_path)
    c = status(r, "ad_account_access", ACT_BR)
    assert c.detail == ("the token cannot see this ad account: Meta's error 100 (subcode 33): Unsupported get "
                        f"request. Object with ID 'act_{ACT_BR}' does not exist, cannot be loaded due to missing "
                        "permissions, or does not support this operation")
    assert status(r, "page_access", PAGE_US).detail.startswith("the token cannot see this page: Meta's error 100")
    for c in r.checks:
        assert not CLIENT_WORDS.search(c.detail), c.detail
    assert not CLIENT_WORDS.search(json.dumps(r.to_json()))


def test_unreachable_graph_is_said_in_words_through_the_cli(ws, tmp_path, cli, monkeypatch):
    _, plan_path = two_pages(ws, tmp_path)
    ws.close()
    monkeypatch.setenv("MIGRATOR_ACCESS_TOKEN", SYS_TOKEN)
    r = cli("preflight", plan_path, "--base-url", "http://127.0.0.1:9", "--json")
    data = json.loads(r.stdout)
    assert r.exit_code == 1 and data["unreachable"]
    details = {c["detail"] for c in data["checks"] if c["readable"] and c["status"] == "unknown"}
    assert any("no connection to Graph: " in d for d in details), details
    assert not CLIENT_WORDS.search(r.output), r.output


@pytest.mark.parametrize("err, words", [
    (NetworkError("ConnectError: [Errno 111] Connection refused", kind="connect"),
     "no connection to Graph: Connection refused"),
    (NetworkError("ReadTimeout: timed out", kind="timeout"), "Graph did not answer in time: timed out"),
    (NetworkError("RemoteProtocolError: Server disconnected", kind="reset"),
     "the connection to Graph broke before an answer: Server disconnected"),
    (NetworkError("HTTP 502 from Graph without an error body", kind="http_5xx", http_status=502),
     "HTTP 502 from Graph without an error body"),
    (error_from_envelope({"error": {"message": "(#200) Requires ads_management permission", "code": 200,
                                    "type": "OAuthException"}}, http_status=403),
     "Meta's error 200: Requires ads_management permission"),
    (error_from_envelope({"error": {"message": "Invalid OAuth access token.", "code": 190,
                                    "error_subcode": 463}}, http_status=400),
     "Meta's error 190 (subcode 463): Invalid OAuth access token."),
])
def test_in_words(err, words):
    assert in_words(err) == words
    assert in_words(NetworkError(in_words(err), kind="connect")).count("no connection") <= 1

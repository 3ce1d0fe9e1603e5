"""The real thing: `migrator emulator serve` on a loopback socket, a curl-like send, `pull tokens` from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from _emu import PAGE, client_for, make
from migrator.pull import pull_tokens


@pytest.fixture
def server(tmp_path):
    subs = tmp_path / "subscribers.jsonl"
    subs.write_text("".join(json.dumps({"token": f"tok{i:03d}", "page_id": PAGE, "region": "US",
                                        "opted_out": False, "psid": f"p{i}"}) + "\n" for i in range(25)))
    hooks = tmp_path / "webhooks.jsonl"
    env = {**os.environ, "MIGRATOR_DB": str(tmp_path / "unused.db")}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "emulator", "serve", "--port", "0",
                             "--warmup", "0", "--subscribers", str(subs), "--webhooks", str(hooks)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        started = time.monotonic() - t0
        assert "listening on http://127.0.0.1:" in line, proc.stderr.read()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        yield {"url": f"http://127.0.0.1:{port}", "started": started, "hooks": hooks, "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_starts_fast_answers_a_curl_style_send_and_writes_webhooks(server):
    assert server["started"] < 2.0
    base = server["url"]
    with httpx.Client(base_url=base) as h:
        cid = h.post("/v24.0/act_1/message_campaign?access_token=x",
                     data={"name": "c", "page_id": PAGE}).json()["id"]
        # what `curl -d` sends: form fields, nested objects as JSON text, token in the query
        r = h.post(f"/v24.0/act_1/messages?access_token=x", data={
            "message_id": cid, "messenger_delivery_data": '{"subscription_token":"tok001"}',
            "message": '{"text":"hi"}'})
        assert r.status_code == 200 and r.json()["success"] is True
        assert "x-business-use-case-usage" in r.headers and "x-app-usage" in r.headers
        assert h.get("/_emulator/state").json()["sends"] == 1  # also flushes webhooks
    lines = server["hooks"].read_text().splitlines()
    assert json.loads(lines[0])["entry"][0]["changes"][0]["field"] == "marketing_message_echoes"


def test_pull_tokens_cli_from_the_server_with_paging(server, tmp_path, cli, monkeypatch, ws):
    tok = tmp_path / "page.token"
    tok.write_text("page-token-SECRET\n")
    monkeypatch.delenv("MIGRATOR_PAGE_TOKEN", raising=False)
    res = cli("pull", "tokens", "--page-id", PAGE, "--base-url", server["url"], "--token-file", tok,
              "--limit", "10", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["accepted"] == 25 and data["rejected"] == 0 and len(data["files"]) == 1
    assert "SECRET" not in res.output
    rows = ws.conn.execute("SELECT count(*), count(psid), min(source) FROM tokens").fetchone()
    assert rows[:2] == (25, 25)
    again = json.loads(cli("pull", "tokens", "--page-id", PAGE, "--base-url", server["url"],
                           "--token-file", tok, "--json").output)
    assert again["accepted"] == 0 and again["duplicates"] + again["ignored"] == 25
    # the token never reached the workspace
    dump = "\n".join(ws.conn.iterdump())
    assert "page-token-SECRET" not in dump


def test_pull_without_a_token_is_a_clear_error(cli, monkeypatch):
    monkeypatch.delenv("MIGRATOR_PAGE_TOKEN", raising=False)
    monkeypatch.delenv("MIGRATOR_ACCESS_TOKEN", raising=False)
    res = cli("pull", "tokens", "--page-id", "1", "--base-url", "http://127.0.0.1:9")
    assert res.exit_code == 1 and "MIGRATOR_PAGE_TOKEN" in res.output


def test_pull_unreachable_server_is_an_error_not_a_traceback(cli, monkeypatch):
    monkeypatch.setenv("MIGRATOR_PAGE_TOKEN", "tok")
    res = cli("pull", "tokens", "--page-id", "1", "--base-url", "http://127.0.0.1:9")
    assert res.exit_code == 1 and "Traceback" not in res.output


def test_pull_tokens_library_in_process(ws):
    app, emu, clock = make()
    with client_for(app) as g:
        summary = pull_tokens(ws, g, [PAGE, "222"], limit=2)
    assert [f.accepted for f in summary.files] == [5, 1]
    assert summary.to_json()["accepted"] == 6


def test_serve_refuses_a_public_host_without_the_flag(cli):
    res = cli("emulator", "serve", "--host", "0.0.0.0", "--subscribers", __file__)
    assert res.exit_code == 1

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
from migrator.inventory.pull import pull_tokens


def _start(tmp_path, *extra):
    subs = tmp_path / "subscribers.jsonl"
    if not subs.exists():
        subs.write_text("".join(json.dumps({"token": f"tok{i:03d}", "page_id": PAGE, "region": "US"}) + "\n"
                                for i in range(25)))
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "emulator", "serve", "--port", "0", "--warmup", "0",
                             "--subscribers", str(subs), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "MIGRATOR_DB": str(tmp_path / "u.db")})
    line = proc.stdout.readline()
    assert "listening on" in line, proc.stderr.read()
    return proc, "http://127.0.0.1:" + line.split("127.0.0.1:")[1].split()[0]


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


def test_serve_answers_a_curl_style_send_and_writes_webhooks(server):
    # start-up time is measured by benchmarks/scale.py ("emulator start"), not asserted here
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


@pytest.mark.parametrize("impl", ["fast", "h11"])
def test_both_http_implementations_answer_the_client(tmp_path, impl):
    proc, url = _start(tmp_path, "--http", impl)
    try:
        from migrator.graph import GraphClient

        with GraphClient("t", base_url=url, body_encoding="form") as g:
            cid = g.create_campaign("1", name="c", page_id=PAGE)["id"]
            assert g.send_message("1", message_id=cid, subscription_token="tok001", message={"text": "hi"}).tracking_id
            assert len(list(g.iter_tokens(PAGE, limit=7))) == 25
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_fast_protocol_keep_alive_expect_continue_close_and_chunked(tmp_path):
    import socket

    proc, url = _start(tmp_path)
    port = int(url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            get = f"GET /v24.0/{PAGE}/notification_message_tokens?limit=1&access_token=x HTTP/1.1\r\nHost: h\r\n\r\n"
            s.sendall((get + get).encode())  # two requests back to back on one connection
            data = b""
            while data.count(b"HTTP/1.1 200") < 2:
                data += s.recv(65536)
            body = b'{"name":"c","page_id":"111"}'
            s.sendall(b"POST /v24.0/act_1/message_campaign HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer x\r\n"
                      b"Content-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
            s.sendall(body)
            rest = b""
            while chunk := s.recv(65536):
                rest += chunk
            assert rest.startswith(b"HTTP/1.1 200") and b'"id"' in rest and b"connection: close" in rest
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /v24.0/act_1/messages HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 411")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_resets_and_timeouts_over_a_real_socket(tmp_path):
    from migrator.graph import NO_RETRY, GraphClient, NetworkError

    prof = tmp_path / "faults.toml"
    prof.write_text("[errors]\nreset_rate = 1.0\n")
    proc, url = _start(tmp_path, "--faults", str(prof))
    try:
        with GraphClient("t", base_url=url, retry=NO_RETRY) as g, pytest.raises(NetworkError) as ei:
            g.create_campaign("1", name="c", page_id=PAGE)
        assert ei.value.kind == "reset" and ei.value.ambiguous
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    prof.write_text("[errors]\ntimeout_rate = 1.0\ntimeout_seconds = 0.5\n")
    proc, url = _start(tmp_path, "--faults", str(prof))
    try:
        with GraphClient("t", base_url=url, retry=NO_RETRY, timeout=0.2) as g, pytest.raises(NetworkError) as ei:
            g.create_campaign("1", name="c", page_id=PAGE)
        assert ei.value.kind == "timeout"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_tls_makes_a_private_throwaway_certificate_that_clients_trust_only_when_told(tmp_path, cli, monkeypatch):
    import stat
    from pathlib import Path

    from migrator.graph import NO_RETRY, GraphClient, NetworkError

    subs = tmp_path / "subscribers.jsonl"
    subs.write_text("".join(json.dumps({"token": f"tok{i:03d}", "page_id": PAGE, "region": "US"}) + "\n"
                            for i in range(5)))
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "emulator", "serve", "--port", "0", "--warmup", "0",
                             "--subscribers", str(subs), "--tls"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "MIGRATOR_DB": str(tmp_path / "u.db")})
    try:
        line = proc.stdout.readline()
        assert "listening on https://127.0.0.1:" in line, proc.stderr.read()
        url = "https://127.0.0.1:" + line.split("127.0.0.1:")[1].split()[0]
        cert = Path(proc.stdout.readline().split("throwaway certificate: ")[1].split()[0])
        keys = list(cert.parent.glob("*key*"))
        assert len(keys) == 1 and stat.S_IMODE(keys[0].stat().st_mode) == 0o600
        assert stat.S_IMODE(cert.parent.stat().st_mode) == 0o700
        monkeypatch.delenv("MIGRATOR_CA_CERT", raising=False)
        with GraphClient("t", base_url=url, retry=NO_RETRY) as g, pytest.raises(NetworkError) as e:
            g.call("GET", f"{PAGE}/notification_message_tokens")
        assert e.value.kind == "connect" and not e.value.ambiguous       # unverified: nothing sent
        with GraphClient("t", base_url=url, retry=NO_RETRY, ca_cert=cert) as g:
            assert len(g.call("GET", f"{PAGE}/notification_message_tokens")["data"]) == 5
        monkeypatch.setenv("MIGRATOR_PAGE_TOKEN", "page-token")
        monkeypatch.setenv("MIGRATOR_CA_CERT", str(cert))
        res = cli("pull", "tokens", "--page-id", PAGE, "--base-url", url, "--json")
        assert res.exit_code == 0, res.output
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not cert.parent.exists()                                         # deleted at exit

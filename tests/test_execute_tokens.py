"""Access tokens are checked before any request and never reach output, error text or the workspace (14.3)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from migrator.graph.wire import check_headers
from migrator.graph import AsyncGraphClient, GraphConfigError, NO_RETRY, NetworkError, load_access_token
from migrator.graph.secret import scrub
from _exec import Emu, planned
from _plan import ts

TOKEN = "EAAGmigratorTESTaccessTOKEN0123456789abcdef"


class Counting(httpx.AsyncBaseTransport):
    """Meta's stand-in: counts every request that reaches it, then lets the emulator answer."""

    def __init__(self, inner):
        self.inner, self.requests = inner, 0

    async def handle_async_request(self, request):
        self.requests += 1
        return await self.inner.handle_async_request(request)


def _db_bytes(db_path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-journal"):
        p = db_path.parent / (db_path.name + suffix)
        if p.exists():
            data += p.read_bytes()
    return data


def _no_piece(text: str | bytes, token: str = TOKEN) -> bool:
    t = text.encode() if isinstance(text, str) else text
    return token[:8].encode() not in t and token[-8:].encode() not in t


@pytest.mark.parametrize("content", [
    TOKEN[:20] + "\n" + TOKEN[20:] + "\n",      # a line break inside
    TOKEN[:20] + "\r" + TOKEN[20:],             # a bare CR
    TOKEN + "\n\n",                             # two trailing line breaks: only one is forgiven
    TOKEN[:20] + " " + TOKEN[20:],              # a space
    TOKEN[:20] + "\t" + TOKEN[20:],
    TOKEN[:20] + "\0" + TOKEN[20:],
    TOKEN[:20] + "\u200b" + TOKEN[20:],         # a zero-width space pasted from a web page
    TOKEN[:20] + "é" + TOKEN[20:],
    " " + TOKEN,
])
def test_a_bad_token_file_never_reaches_a_request(ws, tmp_path, content):
    p = planned(ws, tmp_path, 3)
    f = tmp_path / "token.txt"
    f.write_text(content, encoding="utf-8", newline="")
    emu = Emu(ws)
    meta = Counting(emu.transport())
    from migrator.execute import execute_plan

    with pytest.raises(GraphConfigError) as e:
        execute_plan(ws, p, execute=True, transport=meta, base_url="http://emulator.test", token_file=f,
                     clock=emu.clock, sleep=emu.sleep)
    assert meta.requests == 0 and emu.accepted() == []
    assert str(f) in e.value.message and "it was not used" in e.value.message
    assert _no_piece(e.value.message + (e.value.hint or ""))
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_sends").fetchone()[0] == 0


def test_the_cli_refuses_an_inner_newline_in_one_line_and_keeps_the_token_out_of_the_workspace(
        ws, tmp_path, cli, db_path):
    planned(ws, tmp_path, 3)
    f = tmp_path / "token.txt"
    f.write_text(TOKEN[:20] + "\r\n" + TOKEN[20:] + "\n")
    r = cli("execute", tmp_path / "plan.json", "--execute", "--token-file", f, "--base-url", "http://127.0.0.1:9")
    assert r.exit_code == 1 and "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "contains a line break" in errors[0] and "it was not used" in errors[0]
    assert _no_piece(r.output)
    ws.conn.execute("PRAGMA wal_checkpoint")
    assert _no_piece(_db_bytes(db_path))


@pytest.mark.parametrize("value", [TOKEN + " ", TOKEN[:9] + "\n" + TOKEN[9:], "\u00a0" + TOKEN])
def test_the_environment_token_is_checked_too(monkeypatch, value):
    monkeypatch.setenv("MIGRATOR_ACCESS_TOKEN", value)
    with pytest.raises(GraphConfigError) as e:
        load_access_token()
    assert "MIGRATOR_ACCESS_TOKEN" in e.value.message and _no_piece(e.value.message)


def test_a_token_file_keeps_exactly_its_token(tmp_path):
    f = tmp_path / "t"
    for content in (TOKEN, TOKEN + "\n", TOKEN + "\r\n", "\ufeff" + TOKEN + "\n"):
        f.write_text(content, encoding="utf-8", newline="")
        assert load_access_token(token_file=f) == TOKEN
    f.write_bytes(TOKEN[:10].encode() + b"\xe9\xff" + TOKEN[10:].encode())      # latin-1, not UTF-8
    with pytest.raises(GraphConfigError) as e:
        load_access_token(token_file=f)
    assert "is not UTF-8" in e.value.message and _no_piece(e.value.message)


def test_a_library_caller_cannot_hand_the_client_a_bad_token():
    with pytest.raises(GraphConfigError) as e:
        AsyncGraphClient(TOKEN + "\r\nX-Injected: 1", base_url="http://emulator.test")
    assert _no_piece(e.value.message)


def test_the_scrubber_removes_the_token_and_any_leading_piece_of_it():
    assert scrub(f"Illegal header value b'Bearer {TOKEN}\\n'", TOKEN).count("EAAG") == 0
    assert _no_piece(scrub(f"bad token {TOKEN[:12]}... (truncated)", TOKEN))
    assert _no_piece(scrub(f"{TOKEN[:8]}|{TOKEN[:30]}x{TOKEN}", TOKEN))
    assert scrub(f"{TOKEN[:7]} is too short to be a piece", TOKEN) == f"{TOKEN[:7]} is too short to be a piece"


def test_meta_echoing_a_piece_of_the_token_is_stored_and_printed_without_it(ws, tmp_path, db_path):
    """Errors that quote the access token (or its first characters) lose it before they are kept."""
    p = planned(ws, tmp_path, 4)
    emu = Emu(ws)
    inner = emu.transport()

    class Echo(httpx.AsyncBaseTransport):
        creates = 0

        async def handle_async_request(self, request):
            path = request.url.path
            if path.endswith("/message_campaign") and Echo.creates == 0:
                Echo.creates += 1
                return httpx.Response(400, json={"error": {"code": 100, "type": "OAuthException", "message":
                                                           f"(#100) Invalid parameter near {TOKEN[:14]}"}})
            if path.endswith("/messages"):
                return httpx.Response(400, json={"error": {"code": 2300010, "type": "OAuthException", "message":
                                                           f"No valid creative for token {TOKEN[:-3]}"}})
            return await inner.handle_async_request(request)

    notes: list[str] = []
    from migrator.execute import execute_plan

    s = execute_plan(ws, p, execute=True, transport=Echo(), base_url="http://emulator.test", access_token=TOKEN,
                     clock=emu.clock, sleep=emu.sleep, notify=notes.append)
    assert s.outcome == "stopped" and _no_piece(s.error or "") and _no_piece("\n".join(notes))
    err = ws.conn.execute("SELECT error FROM exec_campaigns").fetchone()[0]
    assert "Invalid parameter near" in err and _no_piece(err)
    s = execute_plan(ws, p, execute=True, transport=Echo(), base_url="http://emulator.test", access_token=TOKEN,
                     clock=emu.clock, sleep=emu.sleep, notify=notes.append)
    errors = [r[0] for r in ws.conn.execute("SELECT error FROM exec_sends")]
    assert errors and all("No valid creative" in e and _no_piece(e) for e in errors)
    assert _no_piece("\n".join(notes)) and _no_piece(str(s.to_json()))
    ws.conn.execute("PRAGMA wal_checkpoint")
    assert _no_piece(_db_bytes(db_path))


def test_the_client_refuses_a_line_break_in_any_header():
    async def go():
        seen = []

        async def handle(reader, writer):
            seen.append(await reader.read(1 << 16))
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        out = []
        try:
            for headers in ({"X-Note": "a\r\nX-Injected: 1"}, {"X-Note": "a\nb"}, {"X-Note": "a\0b"},
                            {"X-Bad\r\nName": "v"}):
                with pytest.raises(httpx.LocalProtocolError) as e:
                    check_headers(headers)
                out.append(str(e.value))
            g = AsyncGraphClient("sometoken", base_url=f"http://127.0.0.1:{port}", retry=NO_RETRY)
            g._heads[None]["Authorization"] = f"Bearer {TOKEN}\r\nX-Injected: 1"   # past the check, as a bug might
            with pytest.raises(NetworkError) as e:
                await g.call("GET", "me")
            assert e.value.kind == "refused_locally" and not e.value.ambiguous and _no_piece(e.value.message)
            await g.aclose()
            await asyncio.sleep(0.05)
        finally:
            server.close()
        return seen, out

    seen, out = asyncio.run(go())
    assert seen == [] and all("nothing was sent" in m and "Injected" not in m for m in out)


def test_a_token_check_happens_before_the_dry_run_too(ws, tmp_path):
    """The dry run uses no access token at all: a bad environment token does not stop it."""
    import os

    p = planned(ws, tmp_path, 2)
    from migrator.execute import execute_plan

    os.environ["MIGRATOR_ACCESS_TOKEN"] = "bad token"
    try:
        s = execute_plan(ws, p, clock=lambda: ts("2026-03-03T00:00:00Z"))
    finally:
        del os.environ["MIGRATOR_ACCESS_TOKEN"]
    assert s.mode == "dry_run"

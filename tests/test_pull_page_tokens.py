"""Issue 16.12: `pull tokens` with one Page token per Page (a page -> token map, mode 0600,
never echoed), and an emulator that checks the token belongs to the Page."""

from __future__ import annotations

import os

import pytest

from _emu import client_for, make
from migrator.emulator import Subscriber
from migrator.errors import InputError
from migrator.inventory.pull import load_page_token_map, pull_tokens

SECRET_A, SECRET_B = "EAAGpageAsecretTOKEN111", "EAAGpageBsecretTOKEN222"


def _map(tmp_path, text, mode=0o600):
    f = tmp_path / "pages.tokens"
    f.write_text(text)
    os.chmod(f, mode)
    return f


def test_map_file_is_read_and_refused_when_others_can_read_it(tmp_path):
    f = _map(tmp_path, f"# page\ttoken\n111\t{SECRET_A}\n\n222\t{SECRET_B}\r\n")
    assert load_page_token_map(f) == {"111": SECRET_A, "222": SECRET_B}
    os.chmod(f, 0o644)
    with pytest.raises(InputError) as e:
        load_page_token_map(f)
    assert "chmod 600" in (e.value.hint or "") and SECRET_A not in str(e.value)


@pytest.mark.parametrize("text", [f"111 {SECRET_A}\n", f"abc\t{SECRET_A}\n", f"111\t{SECRET_A}\n111\t{SECRET_B}\n",
                                  "111\t\n"])
def test_bad_lines_name_the_line_never_the_token(tmp_path, text):
    with pytest.raises(InputError) as e:
        load_page_token_map(_map(tmp_path, text))
    assert "line" in str(e.value)
    assert SECRET_A not in str(e.value) and SECRET_B not in str(e.value)


def test_each_page_is_pulled_with_its_own_token(ws):
    subs = [Subscriber(token="a1", page_id="111", psid="p1"), Subscriber(token="b1", page_id="222", psid="p2")]
    app, emu, clock = make(subscribers=subs, page_tokens={"111": SECRET_A, "222": SECRET_B})
    tokens = {"111": SECRET_A, "222": SECRET_B}
    opened = []

    def client(page_id):
        cm = client_for(app, token=tokens[page_id])
        opened.append(page_id)
        return cm

    summary = pull_tokens(ws, client, ["111", "222"])
    assert opened == ["111", "222"]
    assert sorted(r[0] for r in ws.conn.execute("SELECT token FROM tokens")) == ["a1", "b1"]
    assert sum(f.accepted for f in summary.files) == 2


def test_one_token_for_two_pages_is_refused_by_the_emulator(ws):
    subs = [Subscriber(token="a1", page_id="111", psid="p1"), Subscriber(token="b1", page_id="222", psid="p2")]
    app, emu, clock = make(subscribers=subs, page_tokens={"111": SECRET_A, "222": SECRET_B})
    from migrator.graph import GraphError
    with client_for(app, token=SECRET_A) as g:
        with pytest.raises(GraphError) as e:
            pull_tokens(ws, g, ["111", "222"])
    assert (e.value.code, e.value.subcode) == (100, 33)
    assert SECRET_A not in str(e.value)


def test_cli_refuses_one_token_for_several_pages_and_a_world_readable_map(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MIGRATOR_PAGE_TOKEN", SECRET_A)
    r = cli("pull", "tokens", "--page-id", "111", "--page-id", "222", "--base-url", "http://127.0.0.1:9")
    assert r.exit_code == 2 and "--page-tokens" in r.output
    f = _map(tmp_path, f"111\t{SECRET_A}\n", mode=0o640)
    r = cli("pull", "tokens", "--page-tokens", f, "--base-url", "http://127.0.0.1:9")
    assert r.exit_code == 1 and "chmod 600" in r.output and SECRET_A not in r.output
    ok = _map(tmp_path, f"111\t{SECRET_A}\n")
    r = cli("pull", "tokens", "--page-tokens", ok, "--page-id", "999", "--base-url", "http://127.0.0.1:9")
    assert r.exit_code == 2 and "999" in r.output and SECRET_A not in r.output

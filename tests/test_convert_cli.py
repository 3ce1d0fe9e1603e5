"""`migrator convert FILE` and convert_workspace_contents, on real files and workspaces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrator.cli import main
from migrator.convert import CHANGE_CODES, CONVERTER_VERSION, PROBLEM_CODES, ConvertPolicy, convert_message
from migrator.inventory import convert_workspace_contents

BODY = {"recipient": {"notification_messages_token": "tok-1"}, "message": {"text": "Sale today"}}
CALL = {"attachment": {"type": "template", "payload": {"template_type": "button", "text": "Call us", "buttons": [
    {"type": "postback", "title": "Later", "payload": "L"},
    {"type": "phone_number", "title": "Call", "payload": "+15105551234"}]}}}
AUDIO = {"attachment": {"type": "audio", "payload": {"url": "https://example.com/a.mp3"}}}


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATOR_DB", raising=False)

    def invoke(*args, input=None):
        return CliRunner().invoke(main, list(map(str, args)), input=input, catch_exceptions=False)

    return invoke


def test_jsonl_with_a_bad_line(run, tmp_path):
    f = tmp_path / "sends.jsonl"
    f.write_text(json.dumps(BODY) + "\n\n{not json\n" + json.dumps(CALL) + "\n" + json.dumps(AUDIO) + "\n")
    res = run("convert", "--json", f)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [(r["index"], r["line"], r["outcome"]) for r in out["results"]] == [
        (0, 1, "exact"), (1, 3, "unsupported"), (2, 4, "lossy"), (3, 5, "unsupported")]
    assert out["results"][0]["message"] == {"text": "Sale today"}
    assert out["results"][1]["problems"][0]["code"] == "INVALID_JSON"
    assert "line 3" in out["results"][1]["problems"][0]["detail"]
    assert out["results"][3]["message"] is None
    assert out["counts"] == {"exact": 1, "lossy": 1, "needs_edit": 0, "unsupported": 2}
    assert set(out["results"][2]) >= {"index", "outcome", "message", "changes", "problems"}
    assert not (tmp_path / "migration.db").exists()  # no workspace needed or created


def test_array_and_single_object(run, tmp_path):
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([BODY, CALL], indent=2))
    out = json.loads(run("convert", "--json", arr).stdout)
    assert [r["outcome"] for r in out["results"]] == ["exact", "lossy"]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(CALL, indent=2))
    out = json.loads(run("convert", "--json", one).stdout)
    assert len(out["results"]) == 1 and out["results"][0]["outcome"] == "lossy"


def test_text_summary_and_policy_options(run, tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(CALL))
    res = run("convert", f)
    assert res.exit_code == 0
    assert "#0 (line 1): lossy" in res.output and "BUTTON_DROPPED" in res.output
    assert "1 message(s): 0 exact, 1 lossy" in res.output
    res = run("convert", "--unsupported-buttons", "refuse", f)
    assert "needs_edit" in res.output and "BUTTON_TYPE_UNSUPPORTED [MM 2300023]" in res.output


def test_to_generic_needs_a_title(run, tmp_path):
    f = tmp_path / "img.json"
    f.write_text(json.dumps({"attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/i.jpg"}}}))
    res = run("convert", "--non-facebook-media", "to_generic", f)
    assert res.exit_code == 2 and "generic_image_title" in res.output
    res = run("convert", "--json", "--non-facebook-media", "to_generic", "--generic-image-title", "New", f)
    r = json.loads(res.stdout)["results"][0]
    assert r["outcome"] == "lossy" and r["message"]["attachment"]["payload"]["elements"][0]["title"] == "New"


def test_stdin_and_bad_files(run, tmp_path):
    res = run("convert", "--json", "-", input=json.dumps(BODY) + "\n")
    assert json.loads(res.stdout)["results"][0]["outcome"] == "exact"
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    res = run("convert", empty)
    assert res.exit_code == 1 and "no messages" in res.output and "Traceback" not in res.output
    binary = tmp_path / "bin.json"
    binary.write_bytes(b'{"text": "caf\xe9"}\n')  # cp1252: refused with where and the fix
    res = run("convert", binary)
    assert res.exit_code == 1 and "UTF-8" in res.output and "--encoding" in res.output
    res = run("convert", "--json", "--encoding", "cp1252", binary)
    assert json.loads(res.stdout)["results"][0]["message"] == {"text": "café"}
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "text": "a",\n  oops\n}\n')
    out = json.loads(run("convert", "--json", broken).stdout)
    assert len(out["results"]) == 1 and out["results"][0]["problems"][0]["code"] == "INVALID_JSON"


def test_help_has_an_example(run):
    res = run("convert", "--help")
    assert res.exit_code == 0 and "migrator convert sends.jsonl" in res.output


def _insert(ws, messages):
    ws.db["contents"].insert_all(
        [{"content_hash": f"h{i}", "source": "library", "message": m if isinstance(m, str) else json.dumps(m)}
         for i, m in enumerate(messages)])


def test_convert_workspace_contents(ws):
    _insert(ws, [BODY["message"], CALL, AUDIO, {"text": "x" * 700}, "{not json"])
    counts = convert_workspace_contents(ws)
    assert counts == {"exact": 1, "lossy": 1, "needs_edit": 1, "unsupported": 2}
    rows = {r["content_hash"]: r for r in ws.db["contents"].rows}
    assert all(r["converter_version"] == CONVERTER_VERSION for r in rows.values())
    assert json.loads(rows["h0"]["mm_message"]) == {"text": "Sale today"}
    assert [c["code"] for c in json.loads(rows["h1"]["changes"])] == [
        "CONTESTED_BUTTON_DROPPED", "BUTTON_DROPPED", "BUTTON_TEMPLATE_TO_TEXT"]
    assert rows["h2"]["mm_message"] is None
    assert json.loads(rows["h2"]["problems"])[0]["mm_error_code"] == 2300010
    assert rows["h3"]["mm_message"] is None  # a draft is never stored where a sender could pick it up
    assert json.loads(rows["h4"]["problems"])[0]["code"] == "MESSAGE_NOT_JSON"
    assert not ws.conn.in_transaction


def test_workspace_conversion_is_incremental_and_forced(ws):
    _insert(ws, [CALL])
    convert_workspace_contents(ws)
    ws.conn.execute("UPDATE contents SET outcome='exact', converter_version=?", (CONVERTER_VERSION,))
    # up to date: not redone
    assert convert_workspace_contents(ws)["exact"] == 1
    # an older converter's rows are redone, and force redoes everything with the given policy
    ws.conn.execute("UPDATE contents SET converter_version='0'")
    assert convert_workspace_contents(ws)["lossy"] == 1
    refuse = ConvertPolicy(unsupported_buttons="refuse")
    assert convert_workspace_contents(ws, refuse)["lossy"] == 1
    assert convert_workspace_contents(ws, refuse, force=True)["needs_edit"] == 1


def test_workspace_conversion_inside_callers_transaction(ws):
    _insert(ws, [BODY["message"]] * 1 + [{"text": f"m{i}"} for i in range(1200)])
    ws.conn.execute("BEGIN IMMEDIATE")
    counts = convert_workspace_contents(ws)
    assert ws.conn.in_transaction  # the caller's transaction is left to the caller
    ws.conn.execute("ROLLBACK")
    assert counts["exact"] == 1201
    assert ws.db.execute("SELECT COUNT(*) FROM contents WHERE outcome IS NOT NULL").fetchone()[0] == 0


def test_ingest_content_stores_conversions(cli, ws, tmp_path):
    f = tmp_path / "sends.jsonl"
    f.write_text(json.dumps(BODY) + "\n" + json.dumps({"recipient": {"notification_messages_token": "t2"},
                                                       "message": CALL}) + "\n")
    ws.close()
    assert cli("ingest", "content", f).exit_code == 0
    from migrator.store import open_workspace
    with open_workspace(ws.path) as w:
        outcomes = sorted(r[0] for r in w.conn.execute("SELECT outcome FROM contents"))
    assert outcomes == ["exact", "lossy"]


def test_docs_list_every_code():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "conversion.md").read_text()
    for code in [*CHANGE_CODES, *PROBLEM_CODES]:
        assert re.search(rf"`{code}`", doc), f"{code} missing from docs/conversion.md"


def test_policy_defaults_are_safe():
    p = ConvertPolicy()
    assert p.unsupported_buttons == "drop" and p.non_facebook_media_url == "needs_edit"
    # never truncates: a too-long text stays whole in the draft
    r = convert_message({"text": "y" * 2000})
    assert r.outcome == "needs_edit" and r.message is None and r.draft == {"text": "y" * 2000}


def test_a_file_that_is_not_json_at_all_exits_1_with_its_reason(tmp_path):
    from click.testing import CliRunner

    from migrator.cli import main

    p = tmp_path / "garbage.txt"
    p.write_text("garbage\n")
    r = CliRunner().invoke(main, ["convert", str(p)])
    assert r.exit_code == 1 and "INVALID_JSON" in r.output and "Traceback" not in r.output
    ok = tmp_path / "ok.json"
    ok.write_text('{"text": "hi"}')
    assert CliRunner().invoke(main, ["convert", str(ok)]).exit_code == 0


def test_a_lone_surrogate_escape_in_a_file_is_content_to_edit_not_unreadable(tmp_path):
    """`"\\ud83d"` in an exported message is a broken emoji: needs_edit with the place named, in
    text and in --json (escaped), never a crash and never 'not JSON'."""
    from click.testing import CliRunner

    from migrator.cli import main

    p = tmp_path / "broken.json"
    p.write_text('{"text": "hi \\ud83d there"}\n')
    r = CliRunner().invoke(main, ["convert", str(p)])
    assert r.exit_code == 0 and "needs_edit" in r.output and "LONE_SURROGATE" in r.output, r.output
    r = CliRunner().invoke(main, ["convert", "--json", str(p)])
    assert r.exit_code == 0 and json.loads(r.output)["results"][0]["outcome"] == "needs_edit"

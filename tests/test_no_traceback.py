"""Issue 15.6: hostile files give one clear line and exit 1 or 2, never a traceback.

Deep nesting (JSON 1,000 deep, TOML 500 deep), integers past 64 bits in a plan spec, fault
profiles of the wrong shape, token files that are not UTF-8 or not ASCII, and a lone
surrogate in content given to `convert`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrator.cli import main
from migrator.errors import MigratorError

REPO = Path(__file__).resolve().parent.parent
DEEP_TOML = "x = " + "[" * 500 + "]" * 500 + "\n"


def run(*args, input=None):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, input=input)
    assert "Traceback" not in r.output
    assert r.exit_code in (0, 1, 2), r.output
    return r


@pytest.fixture
def db(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("page_id,token,country\n101,tokA,US\n")
    path = tmp_path / "ws.db"
    assert run("--db", path, "ingest", "tokens", csv).exit_code == 0
    assert run("--db", path, "audit").exit_code == 0
    return path


@pytest.mark.parametrize("text,needle", [
    (DEEP_TOML, "nested too deeply"),
    ((REPO / "plans" / "sample.toml").read_text().replace("lifetime_budget = ", "lifetime_budget = 99999999999999999999", 1)
     if "lifetime_budget = " in (REPO / "plans" / "sample.toml").read_text() else
     (REPO / "plans" / "sample.toml").read_text() + "\nallow_unbounded = false\n[cost]\ncost_per_message = 9223372036854775808\n",
     "integer too large"),
    ("name = \"x\"\n[campaign]\ndaily_budget = 18446744073709551616\n", "integer too large"),
])
def test_plan_spec(db, tmp_path, text, needle):
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    r = run("--db", db, "plan", spec)
    assert r.exit_code == 1 and needle in r.output


def test_plan_spec_in_cp1252_needs_encoding(db, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_bytes((REPO / "plans" / "sample.toml").read_text().replace('name = "', 'name = "Promoção ', 1)
                     .encode("cp1252"))
    r = run("--db", db, "plan", spec, "--as-of", "2026-03-01")
    assert r.exit_code == 1 and "--encoding" in r.output and "byte offset" in r.output
    r = run("--db", db, "plan", spec, "--as-of", "2026-03-01", "--encoding", "cp1252", "--json")
    assert r.exit_code == 0, r.output


def test_rules_file_nested_too_deep(db, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(DEEP_TOML)
    r = run("--db", db, "plan", REPO / "plans" / "sample.toml", "--rules", rules)
    assert r.exit_code == 1 and "nested too deeply" in r.output


@pytest.mark.parametrize("text", [
    DEEP_TOML,
    "latency = 5\n",
    "[latency]\nmedian_ms = \"fast\"\n",
    "[errors]\nhttp_5xx_rate = [1, 2]\n",
    "seed = \"seven\"\n",
    "seed = 99999999999999999999999\n",
    "[latency]\nmedian_ms = 1e400\n",
])
def test_fault_profiles_of_the_wrong_shape(tmp_path, text):
    from migrator.emulator import load_fault_profile

    p = tmp_path / "faults.toml"
    p.write_text(text)
    with pytest.raises(MigratorError):
        load_fault_profile(p)
    r = run("emulator", "serve", "--port", "0", "--faults", p, "--subscribers", _subscribers(tmp_path))
    assert r.exit_code == 1 and "fault profile" in r.output.lower() or "faults.toml" in r.output


def _subscribers(tmp_path):
    p = tmp_path / "subs.jsonl"
    p.write_text(json.dumps({"token": "T1", "page_id": "1", "region": "US"}) + "\n")
    return p


@pytest.mark.parametrize("data", [
    b"EAAB\xe9\xe9token",            # not UTF-8 (a cp1252 editor)
    "EAAB\u00e9token".encode(),        # non-ASCII
    b"EAAB token\nsecond line",       # spaces, several lines
], ids=["not-utf8", "non-ascii", "two-lines"])
def test_token_files(tmp_path, data):
    """One clear error that never shows the token (the checks are w14-guards' _check_token)."""
    from migrator.graph import load_access_token

    p = tmp_path / "token"
    p.write_bytes(data)
    with pytest.raises(MigratorError) as exc:
        load_access_token(token_file=p)
    assert "EAAB" not in exc.value.message.replace(str(tmp_path), "")


def test_convert_lone_surrogate_keeps_the_batch(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"text": "ok"}\n{"text": "bad \\ud83d"}\n{"text": "fine"}\n')
    r = run("convert", "--json", p)
    assert r.exit_code == 0
    results = json.loads(r.stdout)["results"]
    assert [x["outcome"] for x in results] == ["exact", "needs_edit", "exact"]   # a broken emoji: edit it
    doc = tmp_path / "c.json"
    doc.write_text('[\n{"text": "ok"},\n{"text": "bad \\ud83d"}\n]\n')
    r = run("convert", p)
    assert "ok" in r.output


@pytest.mark.parametrize("text", [
    "[" * 1000 + "]" * 1000 + "\n",
    "[\n" + "[" * 1000 + "]" * 1000 + "\n]\n",
    '{"message": ' + "{\"a\": " * 990 + "1" + "}" * 990 + "}\n",
])
def test_convert_deep_json(tmp_path, text):
    p = tmp_path / "deep.json"
    p.write_text(text)
    run("convert", p)
    run("convert", "--json", p)


def test_ingest_content_document_with_lone_surrogate(tmp_path):
    p = tmp_path / "lib.json"
    p.write_text('[\n{"page_id": "1", "key": "a", "message": {"text": "bad \\ud83d"}},\n'
                 '{"page_id": "1", "key": "b", "message": {"text": "good"}}\n]\n')
    r = run("--db", tmp_path / "w.db", "ingest", "content", p, "--json")
    assert r.exit_code == 0
    f = json.loads(r.stdout)["files"][0]
    assert (f["accepted"], f["rejected"]) == (1, 1)


def test_webhook_document_with_lone_surrogate(tmp_path):
    hook = {"object": "page", "entry": [{"id": "1", "time": 1760000000000, "messaging": [
        {"sender": {"id": "2"}, "recipient": {"id": "1"}, "timestamp": 1760000000000,
         "optin": {"type": "notification_messages", "notification_messages_token": "T", "title": "X"}}]}]}
    bad = json.dumps(hook).replace('"X"', '"\\ud83d"')
    p = tmp_path / "hooks.json"
    p.write_text("[\n" + bad + ",\n" + json.dumps(hook).replace('"T"', '"U"') + "\n]\n")
    r = run("--db", tmp_path / "w.db", "ingest", "tokens", p, "--json")
    f = json.loads(r.stdout)["files"][0]
    assert (f["accepted"], f["rejected"]) == (1, 1)


@pytest.mark.parametrize("command", [["audit"], ["rules", "show"]])
def test_a_rules_file_in_another_encoding_is_refused_then_read_with_encoding(tmp_path, command):
    """`--rules` files follow the input rule too: never decoded by silent replacement, and every
    command that reads one takes `--encoding`."""
    from click.testing import CliRunner

    from migrator.cli import main

    rules = tmp_path / "rules.toml"
    rules.write_bytes("# r\u00e8gles du partenaire\nmm_cadence_hours = 12\n".encode("cp1252"))
    db = str(tmp_path / "ws.db")
    base = ["--db", db, *command, "--rules", str(rules)]
    r = CliRunner().invoke(main, base)
    assert r.exit_code in (1, 2) and "--encoding" in r.output and "Traceback" not in r.output, r.output
    r = CliRunner().invoke(main, base + ["--encoding", "cp1252"])
    assert "No such option" not in r.output and "not UTF-8" not in r.output, r.output

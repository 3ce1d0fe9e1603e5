"""The executor's commands through the CLI: execute (dry run), status, unlock, ingest receipts."""

from __future__ import annotations

import json

from _exec import Emu, jsonl, planned
from _plan import ingest, tok


def _hook(field, token, message_id, ts, tracking="t-1", **extra):
    return {"object": "page", "entry": [{"id": "P1", "time": ts, "changes": [{"field": field, "value": {
        "messenger_subscription_token": token, "message_id": message_id, "marketing_message_tracking_id": tracking,
        "timestamp": ts, "page_id": "P1", **extra}}]}]}


def test_dry_run_cli_prints_one_json_object_and_sends_nothing(ws, tmp_path, cli):
    planned(ws, tmp_path, 7)
    r = cli("execute", tmp_path / "plan.json", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["mode"] == "dry_run" and out["dry_run"] is True and out["would_send"] == 7
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_sends").fetchone()[0] == 0
    r = cli("execute", tmp_path / "plan.json")
    assert "dry run of plan" in r.output and "no request left this machine" in r.output


def test_execute_refuses_a_stale_plan_and_a_missing_token(ws, tmp_path, cli, monkeypatch):
    planned(ws, tmp_path, 3)
    monkeypatch.delenv("MIGRATOR_ACCESS_TOKEN", raising=False)
    r = cli("execute", tmp_path / "plan.json", "--execute")
    assert r.exit_code == 1 and "no access token" in r.output and "Traceback" not in r.output
    ingest(ws, tmp_path / "more", tokens=[tok(99)], name="more")
    r = cli("execute", tmp_path / "plan.json")
    assert r.exit_code == 1 and "the plan is stale" in r.output and "inventory changed" in r.output


def test_status_per_plan_campaign_and_batch(ws, tmp_path, cli):
    p = planned(ws, tmp_path, 9, extra="batch_size = 5")
    r = json.loads(cli("status", "--json").stdout)
    assert r["plans"][0]["status"] == "not_started" and r["plans"][0]["planned"] == 9
    emu = Emu(ws)
    emu.emulator.state.subscribers["TOKEN000004SECRET"].opted_out = True
    emu.run(ws, p, batches=1)
    r = json.loads(cli("status", "--json").stdout)
    plan = r["plans"][0]
    assert (plan["sent"], plan["failed"], plan["planned"], plan["stale"]) == (4, 1, 4, [])
    assert plan["spend"] == {"USD": 8}                  # 4 sent x 2 minor units
    c = plan["campaigns"][0]
    assert c["state"] == "ready" and c["message_id"] and c["sent"] == 4
    assert [(b["batch"], b["sent"], b["planned"]) for b in plan["batches"]] == [(1, 4, 0), (2, 0, 4)]
    assert r["lock"] is None
    text = cli("status").output
    assert "campaign c1" in text and "batch 2" in text
    # money in major units with its basis; "planned" named for what it is (what remains)
    assert "spend USD 0.08 accepted" in text and "to send 4" in text
    assert "{" not in text and "8 USD" not in text and "planned" not in text


def test_unlock_asks_first(ws, tmp_path, cli):
    ws.conn.execute("INSERT INTO exec_lock VALUES (1, 'ops@box', 4242, 'box', 1, 1, 'p1', 'n')")
    r = cli("unlock", input="n\n")
    assert "lock held by ops@box" in r.output and "lock kept" in r.output
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_lock").fetchone()[0] == 1
    r = cli("unlock", input="y\n")
    assert "lock removed" in r.output
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_lock").fetchone()[0] == 0
    assert "no executor lock" in cli("unlock").output


def test_ingest_receipts_counts_and_settles(ws, tmp_path, cli):
    p = planned(ws, tmp_path, 3)
    emu = Emu(ws)
    emu.run(ws, p)
    mid = ws.conn.execute("SELECT message_id FROM exec_campaigns").fetchone()[0]
    ws.conn.execute("UPDATE exec_sends SET state = 'unknown', tracking_id = NULL WHERE send_id = 1")
    tok1 = ws.conn.execute("SELECT t.token FROM exec_sends e JOIN tokens t ON t.id = e.token_id "
                           "WHERE send_id = 1").fetchone()[0]
    f = jsonl(tmp_path / "hooks.jsonl", [
        _hook("marketing_message_echoes", tok1, mid, 1772500000000, tracking="trk-9"),
        _hook("marketing_message_deliveries", tok1, mid, 1772500002000, tracking="trk-9"),
        _hook("marketing_message_reads", tok1, mid, 1772500090000, tracking="trk-9"),
        _hook("marketing_message_clicks", tok1, mid, 1772500099000),
        _hook("marketing_message_echoes", "TOKEN-NOT-OURS", mid, 1772500000000),
        {"object": "page", "entry": [{"changes": [{"field": "marketing_message_echoes", "value": {"mid": "x"}}]}]},
    ])
    with f.open("a") as fh:
        fh.write("{not json\n")
    r = cli("ingest", "receipts", f, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["accepted"], out["duplicates"], out["ignored"], out["rejected"]) == (3, 0, 2, 2)
    row = ws.conn.execute("SELECT state, reason, tracking_id, delivered_at, read_at FROM exec_sends "
                          "WHERE send_id = 1").fetchone()
    assert row == ("sent", "settled_by_receipt", "trk-9", 1772500002, 1772500090)
    out = json.loads(cli("ingest", "receipts", f, "--json").stdout)
    assert (out["accepted"], out["duplicates"]) == (0, 4)
    assert cli("status", "--json").output.count('"stale": []') == 1   # receipts do not make the plan stale


def test_execute_help_has_an_example(cli):
    for cmd in (["execute"], ["status"], ["unlock"], ["ingest", "receipts"]):
        assert "Example" in cli(*cmd, "--help").output


def test_ingest_receipts_refuses_undecodable_bytes_and_takes_encoding(ws, tmp_path, cli):
    """Receipts files follow the rule every input follows: never decoded by silent replacement;
    `--encoding` reads a file exported in another encoding."""
    line = ('{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"1"},'
            '"recipient":{"id":"2"},"timestamp":1,"message":{"is_echo":true,"text":"caf\u00e9"}}]}]}\n')
    path = tmp_path / "receipts-cp1252.jsonl"
    path.write_bytes(line.encode("cp1252"))
    r = cli("ingest", "receipts", path)
    assert r.exit_code == 1 and "not UTF-8" in r.output and "--encoding cp1252" in r.output
    r = cli("ingest", "receipts", "--encoding", "cp1252", "--json", path)
    assert r.exit_code == 0, r.output
    counts = json.loads(r.output)["files"][0]
    # a Messenger delivery with no MM change is counted (ignored), not lost
    assert (counts["records"], counts["ignored"]) == (1, 1)

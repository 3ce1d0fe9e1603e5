"""A dry run says what it would do, never what it did, and leaves nothing a real run could take for its own (14.8)."""

from __future__ import annotations

import json
import re

from migrator.execute import execute_plan
from _exec import Emu, ledger, planned
from _plan import ts

EXEC_TABLES = ("exec_plans", "exec_campaigns", "exec_sends", "exec_runs", "exec_lock", "exec_receipts",
               "exec_campaign_zones")
DID = re.compile(r"\b(sent|created|creating|sending)\b", re.I)


def _keys(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def _dump(ws) -> dict:
    return {t: sorted(map(tuple, ws.conn.execute(f"SELECT * FROM {t}").fetchall())) for t in EXEC_TABLES}


def test_the_dry_run_text_says_would_never_did(ws, tmp_path, cli):
    planned(ws, tmp_path, 7)
    r = cli("execute", tmp_path / "plan.json")
    assert r.exit_code == 0, r.output
    assert DID.search(r.output) is None, r.output
    assert "campaigns it would create: 1" in r.output and "sends it would make: 7" in r.output
    assert "would send 7" in r.output and "would create it" in r.output


def test_the_dry_run_json_has_its_own_keys(ws, tmp_path, cli):
    planned(ws, tmp_path, 7)
    r = cli("execute", tmp_path / "plan.json", "--json")
    out = json.loads(r.stdout)
    assert out["dry_run"] is True and out["mode"] == "dry_run"
    assert out["would_send"] == 7 and out["would_create"] == 1 and out["would_refuse"] == 0
    assert out["would_ledger"] == {"still_planned": 0, "in_flight": 0, "would_send": 7, "would_skip": 0,
                                   "would_fail": 0, "would_be_unknown": 0}
    assert out["campaigns"][0]["would_create"] is True and out["campaigns"][0]["message_id"] is None
    keys = set(_keys(out))
    assert not keys & {"sent", "created", "attempted", "ledger", "reused", "resume_command"}, keys
    assert out["resumable"] is False


def test_a_real_runs_json_says_it_is_not_a_dry_run(ws, tmp_path):
    p = planned(ws, tmp_path, 3)
    s = Emu(ws).run(ws, p)
    out = s.to_json()
    assert out["dry_run"] is False and out["sent"] == 3 and "would_send" not in out


def test_a_dry_run_before_and_during_a_real_run_leaves_nothing_behind(ws, tmp_path, cli):
    p = planned(ws, tmp_path, 10, extra="batch_size = 4")
    empty = _dump(ws)
    assert cli("execute", tmp_path / "plan.json").exit_code == 0            # a dry run first
    assert execute_plan(ws, p, clock=lambda: ts("2026-03-03T00:00:00Z")).mode == "dry_run"
    assert _dump(ws) == empty                                                 # not a row anywhere
    emu = Emu(ws)
    s = emu.run(ws, p, batches=1)                                             # the real run is its own
    assert s.sent == 4 and s.campaigns[0]["created"] is True and s.campaigns[0]["reused"] is False
    before = _dump(ws)
    r = cli("execute", tmp_path / "plan.json")                                # a dry run mid-way
    assert r.exit_code == 0 and "already set up by a real run" in r.output and "would send 6" in r.output
    assert "already done by real runs: 4 went out" in r.output
    assert DID.search(r.output) is None, r.output
    assert _dump(ws) == before                                                # the real rows untouched
    out = json.loads(cli("execute", tmp_path / "plan.json", "--json").stdout)
    assert out["would_send"] == 6 and out["would_ledger"]["would_send"] == 6
    assert out["already_by_real_runs"] == {"sent": 4}
    s = emu.run(ws, p)
    assert s.sent == 6 and ledger(ws, p.plan_id) == {"sent": 10} and len(emu.emulator.state.campaigns) == 1
    assert {r[0] for r in ws.conn.execute("SELECT mode FROM exec_runs")} == {"execute"}
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_sends WHERE tracking_id LIKE 'dryrun-%'").fetchone()[0] == 0
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_campaigns WHERE message_id LIKE 'dryrun-%'").fetchone()[0] == 0


def test_a_dry_run_of_some_batches_counts_the_rest_it_does_not_copy(ws, tmp_path, cli):
    """`--batches N` copies only the N batches into the dry run's scratch ledger (19.6: a 4.9M-row
    copy took minutes at 10M); the planned rows beyond are still counted, before and after a real run."""
    p = planned(ws, tmp_path, 20, extra="batch_size = 5\n")
    assert len({s.batch for s in p.batches}) == 4

    def dry(n):
        r = cli("execute", tmp_path / "plan.json", "--batches", str(n), "--json")
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    out = dry(1)
    assert out["would_send"] == 5 and out["would_ledger"]["still_planned"] == 15, out["would_ledger"]
    assert dry(3)["would_ledger"]["still_planned"] == 5
    before = _dump(ws)
    s = Emu(ws).run(ws, p, batches=1)                 # a real run sends the first batch
    assert s.sent == 5
    out = dry(1)                                      # the dry run now covers the second batch
    assert out["would_send"] == 5 and out["would_ledger"]["still_planned"] == 10, out["would_ledger"]
    assert dry(9)["would_ledger"]["still_planned"] == 0 and dry(9)["would_send"] == 15
    assert before != _dump(ws)

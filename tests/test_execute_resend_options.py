"""`execute --resend SEND_ID` and `--receipt-margin`: a named row that is not `unknown`, and a margin
below the safe minimum, are refused (exit 2) with what the thing is and what to do instead."""

from __future__ import annotations

import pytest

from migrator.errors import OptionError
from _exec import Emu, ledger, planned


def _states(ws, plan_id):
    return dict(ws.conn.execute("SELECT send_id, state FROM exec_sends WHERE plan_id = ?", (plan_id,)))


def test_resend_of_a_sent_row_is_refused_through_the_cli(ws, tmp_path, cli):
    p = planned(ws, tmp_path, 4)
    Emu(ws).run(ws, p)
    assert ledger(ws, p.plan_id) == {"sent": 4}
    before = _states(ws, p.plan_id)
    r = cli("execute", tmp_path / "plan.json", "--resend", "2")
    assert r.exit_code == 2, r.output
    assert "send 2 is sent" in r.output and "never sent twice" in r.output and "make a new plan" in r.output
    assert "Traceback" not in r.output
    assert _states(ws, p.plan_id) == before


def test_resend_names_each_wrong_row_with_its_state_and_the_fix(ws, tmp_path, cli):
    p = planned(ws, tmp_path, 6)
    emu = Emu(ws)
    emu.run(ws, p)
    ws.conn.execute("UPDATE exec_sends SET state = 'planned', tracking_id = NULL WHERE send_id = 1")
    ws.conn.execute("UPDATE exec_sends SET state = 'failed', reason = 'retries_exhausted' WHERE send_id = 3")
    ws.conn.execute("UPDATE exec_sends SET state = 'skipped', reason = 'opted_out_during_run' WHERE send_id = 4")
    ws.conn.execute("UPDATE exec_sends SET state = 'unknown' WHERE send_id = 5")
    r = cli("execute", tmp_path / "plan.json", "--resend", "1", "--resend", "3", "--resend", "4",
            "--resend", "5", "--resend", "99")
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.split())
    assert "send 1 is planned, not sent yet" in out and "drop --resend 1" in out
    assert "send 3 is failed (retries_exhausted)" in out and "--retry-failed retries_exhausted" in out
    assert "send 4 is skipped (opted_out_during_run)" in out
    assert "send 5" not in out                       # the unknown one is fine
    assert f"send 99 is not in plan {p.plan_id}" in out


def test_a_real_run_naming_a_row_a_dead_run_left_in_flight_is_refused_and_recorded(ws, tmp_path):
    p = planned(ws, tmp_path, 5)
    emu = Emu(ws)
    emu.run(ws, p)
    ws.conn.execute("UPDATE exec_sends SET state = 'in_flight' WHERE send_id = 2")
    with pytest.raises(OptionError) as e:
        emu.run(ws, p, resend_named=(2,))
    assert e.value.exit_code == 2
    assert "send 2 was in flight when a run stopped" in e.value.message
    assert "migrator ingest receipts" in e.value.message
    # nothing moved, the lock is free, and the run history says it was refused
    assert _states(ws, p.plan_id)[2] == "in_flight"
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_lock").fetchone()[0] == 0
    assert ws.conn.execute("SELECT outcome FROM exec_runs ORDER BY id DESC LIMIT 1").fetchone()[0] == "refused"
    # the procedure it gives works: run again (the row becomes unknown), then name it
    s = emu.run(ws, p)
    assert s.recovered_unknown == 1
    s = emu.run(ws, p, resend_named=(2,), wait=False)
    assert s.resent_unknown == 1


def test_resend_of_an_unknown_row_still_goes(ws, tmp_path):
    p = planned(ws, tmp_path, 3)
    emu = Emu(ws)
    emu.run(ws, p)
    ws.conn.execute("UPDATE exec_sends SET state = 'unknown' WHERE send_id = 1")
    s = emu.run(ws, p, resend_named=(1,), wait=False)
    assert s.resent_unknown == 1 and s.resend == {"resent:named": 1}


# ------------------------------------------------------------------ --receipt-margin has a floor
def test_a_receipt_margin_below_the_minimum_is_refused_against_meta(ws, tmp_path, cli):
    planned(ws, tmp_path, 3)
    for url in ([], ["--base-url", "https://graph.facebook.com"], ["--base-url", "http://localhost.example.com"]):
        r = cli("execute", tmp_path / "plan.json", "--resend-unknown", "--receipt-margin", "1", *url)
        assert r.exit_code == 2, r.output
        assert "--receipt-margin 1 s is below the safe minimum of 60 s" in r.output
        assert "billed twice" in r.output and "Traceback" not in r.output
    r = cli("execute", tmp_path / "plan.json", "--resend-unknown", "--receipt-margin", "59.5")
    assert r.exit_code == 2
    for ok in (["--receipt-margin", "60"], ["--receipt-margin", "600"], []):
        r = cli("execute", tmp_path / "plan.json", "--resend-unknown", *ok)
        assert r.exit_code == 0, r.output


def test_a_small_receipt_margin_is_legal_against_the_local_emulator(ws, tmp_path, cli):
    """Loopback: only the emulator serves there, writing each echo as it accepts the send."""
    planned(ws, tmp_path, 3)
    for url in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"):
        r = cli("execute", tmp_path / "plan.json", "--resend-unknown", "--receipt-margin", "1", "--base-url", url)
        assert r.exit_code == 0, r.output

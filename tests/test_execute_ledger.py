"""The send ledger's exactly-once rules, one test per way a send could go twice or be lost.

Each test drives the real ledger on a real workspace file, with the in-process emulator (virtual
clock) where a send must really be accepted, and checks the emulator's own record.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sqlite3

import httpx
import pytest

from migrator.errors import LockHeldError
from migrator.execute import execute_plan, execution_status, ingest_receipts
from migrator.execute.ledger import Ledger, Result
from migrator.execute.lock import acquire, force_unlock
from migrator.plan import plan_staleness
from _exec import Emu, ledger, planned


def _dead_pid() -> int:
    """A pid that is not running on this host."""
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def _crash_after(ws, plan_id, send_ids):
    """What a kill -9 leaves: these rows in flight, their answers never recorded."""
    ws.conn.execute(f"UPDATE exec_sends SET state = 'in_flight', tracking_id = NULL, sent_at = NULL, "
                    f"reason = NULL WHERE plan_id = ? AND send_id IN ({','.join('?' * len(send_ids))})",
                    (plan_id, *send_ids))


def _sent_by_emulator(emu) -> list[str]:
    return [s.token for s in emu.accepted()]


# ---------------------------------------------------------------------------- 13.1 receipts are facts
def test_receipts_ingested_while_rows_are_in_flight_settle_them(ws, tmp_path):
    p = planned(ws, tmp_path, 10)
    hooks = tmp_path / "hooks.jsonl"
    emu = Emu(ws, webhooks=hooks)
    emu.run(ws, p)
    emu.emulator.webhooks.flush()
    _crash_after(ws, p.plan_id, [1, 2, 3])            # accepted by Meta, killed before recording
    ingest_receipts(ws, [hooks])                        # while they are still in flight
    assert ledger(ws, p.plan_id) == {"sent": 10}
    # the same file again, after the next run: nothing to do, nothing lost, nothing re-sent
    s = emu.run(ws, p, resend_unknown=True)
    assert (s.recovered_unknown, s.attempted) == (0, 0)
    ingest_receipts(ws, [hooks])
    assert ledger(ws, p.plan_id) == {"sent": 10}
    assert len(_sent_by_emulator(emu)) == 10


def test_a_duplicate_receipt_still_settles_a_row_recovered_later(ws, tmp_path):
    """Ingest while in flight, then recovery (in_flight -> unknown), then the same file again."""
    p = planned(ws, tmp_path, 6)
    hooks = tmp_path / "hooks.jsonl"
    emu = Emu(ws, webhooks=hooks)
    emu.run(ws, p)
    emu.emulator.webhooks.flush()
    ingest_receipts(ws, [hooks])                        # every receipt stored now
    _crash_after(ws, p.plan_id, [4, 5])
    s = emu.run(ws, p)                                  # recovery applies the stored receipts
    assert s.recovered_unknown == 0 and s.attempted == 0
    r = ingest_receipts(ws, [hooks])
    assert r.accepted == 0 and r.duplicates > 0
    assert ledger(ws, p.plan_id) == {"sent": 6}


# ---------------------------------------------------------------------------- 13.2 --resend-unknown
def test_resend_unknown_never_resends_rows_its_own_run_recovered(ws, tmp_path):
    p = planned(ws, tmp_path, 8)
    emu = Emu(ws, webhooks=tmp_path / "hooks.jsonl")
    emu.run(ws, p)
    _crash_after(ws, p.plan_id, [1, 2])                # no receipts ingested yet
    s = emu.run(ws, p, resend_unknown=True)
    assert s.attempted == 0 and s.resent_unknown == 0
    assert s.resend == {"kept:unknown_since_this_run": 2}
    assert ledger(ws, p.plan_id) == {"sent": 6, "unknown": 2}
    assert len(_sent_by_emulator(emu)) == 8 and not emu.emulator.state.errors


def test_resend_unknown_resends_only_what_a_newer_receipt_would_have_settled(ws, tmp_path):
    p = planned(ws, tmp_path, 12, extra="batch_size = 6")
    hooks = tmp_path / "hooks.jsonl"
    emu = Emu(ws, webhooks=hooks)
    led = Ledger(ws.conn, p.plan_id)
    led.ensure_rows()
    lost = led.claim("c1", 2, now=emu.clock(), max_batch=1)   # claimed, then the process died
    assert [r.send_id for r in lost] == [1, 2]
    s = emu.run(ws, p, batches=1)                       # recovers them (unknown), sends the other 4
    assert s.recovered_unknown == 2 and s.sent == 4
    emu.emulator.webhooks.flush()
    ingest_receipts(ws, [hooks])                        # receipts, but none newer than their requests
    emu.clock.advance(3600)
    s = emu.run(ws, p, resend_unknown=True, batches=1, receipt_margin=60)
    assert s.resent_unknown == 0 and s.resend == {"kept:no_receipt_newer_than_send": 2}
    assert s.sent == 6                                  # batch 2 went out an hour later: newer receipts
    emu.emulator.webhooks.flush()
    ingest_receipts(ws, [hooks])
    s = emu.run(ws, p, resend_unknown=True, receipt_margin=60)
    assert s.resend == {"resent:receipts_newer_than_send": 2} and s.sent == 2
    detail = dict(ws.conn.execute("SELECT send_id, resend_check FROM v_exec_sends WHERE send_id IN (1, 2)"))
    assert detail == {1: "resent:receipts_newer_than_send", 2: "resent:receipts_newer_than_send"}
    toks = _sent_by_emulator(emu)
    assert len(toks) == len(set(toks)) == 12 and ledger(ws, p.plan_id) == {"sent": 12}


# ---------------------------------------------------------------------------- 13.3 claim, record, unlock
def test_two_executors_never_claim_the_same_row(ws, tmp_path, db_path):
    """A second executor claims between the first one's read and its write: no row is taken twice."""
    p = planned(ws, tmp_path, 20)
    a = Ledger(ws.conn, p.plan_id)
    a.ensure_rows()
    other = sqlite3.connect(str(db_path), isolation_level=None, timeout=30)
    b = Ledger(other, p.plan_id)
    taken_by_b = []

    def interleave(sql):
        if sql.startswith("BEGIN") and not taken_by_b:
            taken_by_b.extend(b.claim("c1", 5, now=2_000_000_000, max_batch=99))

    ws.conn.set_trace_callback(interleave)
    try:
        taken_by_a = a.claim("c1", 5, now=2_000_000_000, max_batch=99)
    finally:
        ws.conn.set_trace_callback(None)
        other.close()
    assert len(taken_by_b) == 5 and len(taken_by_a) == 5
    assert not {r.send_id for r in taken_by_a} & {r.send_id for r in taken_by_b}


def test_a_sendability_predicate_joins_the_claim(ws, tmp_path):
    """The hook other checks use: a join and a condition, each with parameters, inside the claim."""
    from migrator.execute.ledger import ClaimPredicate

    p = planned(ws, tmp_path, 6)
    ws.conn.execute("CREATE TEMP TABLE blocked (token_id INTEGER PRIMARY KEY, until INTEGER)")
    ws.conn.executemany("INSERT INTO blocked VALUES (?, ?)", [(1, 2_000_000_100), (2, 1)])
    pred = ClaimPredicate(join="LEFT JOIN temp.blocked b ON b.token_id = e.token_id AND b.until > ?",
                          where="b.token_id IS NULL AND e.send_id != ?",
                          join_params=lambda now: (now,), where_params=lambda now: (6,))
    led = Ledger(ws.conn, p.plan_id, sendable=pred)
    led.ensure_rows()
    got = led.claim("c1", 10, now=2_000_000_000, max_batch=99)
    token_of = dict(ws.conn.execute("SELECT send_id, token_id FROM exec_sends"))
    assert sorted(r.send_id for r in got) == [s for s in range(1, 6) if token_of[s] != 1]
    assert ledger(ws, p.plan_id) == {"in_flight": 4, "planned": 2}


def test_record_never_moves_a_sent_row(ws, tmp_path):
    p = planned(ws, tmp_path, 4)
    led = Ledger(ws.conn, p.plan_id)
    led.ensure_rows()
    rows = led.claim("c1", 4, now=2_000_000_000, max_batch=99)
    ws.conn.execute("UPDATE exec_sends SET state = 'sent', reason = 'settled_by_receipt' WHERE send_id = ?",
                    (rows[0].send_id,))
    moved = led.record([Result(r.send_id, "planned", False) for r in rows])
    assert moved == 3
    assert ws.conn.execute("SELECT state FROM exec_sends WHERE send_id = ?", (rows[0].send_id,)).fetchone()[0] == "sent"
    # an unknown row takes a later "sent" answer, nothing else
    ws.conn.execute("UPDATE exec_sends SET state = 'unknown' WHERE send_id = ?", (rows[1].send_id,))
    assert led.record([Result(rows[1].send_id, "failed", True, reason="x")]) == 0
    assert led.record([Result(rows[1].send_id, "sent", True, tracking_id="t")]) == 1


def test_unlock_refuses_while_the_lock_holder_is_alive_here(ws, tmp_path, cli):
    lock = acquire(ws.conn, "p1")                      # this test's own (live) process holds it
    with pytest.raises(LockHeldError, match="alive"):
        force_unlock(ws.conn)
    r = cli("unlock", "--yes")
    assert r.exit_code == 1 and "alive" in r.output
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_lock").fetchone()[0] == 1
    lock.release()
    ws.conn.execute("INSERT INTO exec_lock VALUES (1, 'ops@here', ?, ?, 1, 1, 'p1', 'n')",
                    (_dead_pid(), socket.gethostname()))
    assert cli("unlock", "--yes").exit_code == 0       # a dead holder's lock goes
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_lock").fetchone()[0] == 0


# ---------------------------------------------------------------------------- 13.4 the network
class _Outage(httpx.AsyncBaseTransport):
    """The network to Meta is cut for `seconds` (virtual time) once `after` sends went through."""

    def __init__(self, inner, clock, seconds, after=3):
        self.inner, self.clock, self.seconds, self.after = inner, clock, seconds, after
        self.sends = 0
        self.cut_at = None
        self.refused = 0

    async def handle_async_request(self, request):
        if request.url.path.endswith("/messages"):
            self.sends += 1
            if self.cut_at is None and self.sends > self.after:
                self.cut_at = self.clock()
            if self.cut_at is not None and self.clock() < self.cut_at + self.seconds:
                self.refused += 1
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.inner.handle_async_request(request)


def test_an_outage_costs_no_attempt_and_the_sends_go_when_it_ends(ws, tmp_path):
    p = planned(ws, tmp_path, 15)
    emu = Emu(ws)
    net = _Outage(emu.transport(), emu.clock, 120)     # two minutes without network
    s = emu.run(ws, p, transport=net, concurrency=4)
    assert net.refused >= 5 and s.outcome == "done" and s.never_left == net.refused
    assert ledger(ws, p.plan_id) == {"sent": 15}
    assert ws.conn.execute("SELECT MAX(attempts) FROM exec_sends").fetchone()[0] == 1
    assert len(_sent_by_emulator(emu)) == 15


def test_a_long_outage_stops_the_run_as_interrupted_not_done(ws, tmp_path):
    p = planned(ws, tmp_path, 15)
    emu = Emu(ws)
    net = _Outage(emu.transport(), emu.clock, 10 * 3600)
    s = emu.run(ws, p, transport=net, concurrency=4, outage_limit_seconds=300)
    assert s.outcome == "interrupted" and s.exit_code == 1 and "no connection" in s.error
    assert ledger(ws, p.plan_id) == {"sent": 3, "planned": 12}
    assert ws.conn.execute("SELECT MAX(attempts) FROM exec_sends WHERE state = 'planned'").fetchone()[0] == 0
    emu.clock.advance(10 * 3600)
    assert emu.run(ws, p).sent == 12                   # the same command resumes


def test_retry_failed_puts_transient_failures_back(ws, tmp_path, cli):
    p = planned(ws, tmp_path, 6)
    emu = Emu(ws)
    emu.run(ws, p, batches=1, execute=True)
    ws.conn.execute("UPDATE exec_sends SET state = 'failed', reason = 'retries_exhausted', attempts = 10, "
                    "tracking_id = NULL WHERE send_id IN (1, 2)")
    emu.emulator.state.last_sent.clear()
    emu.emulator.state.store.conn.execute("DELETE FROM sends WHERE seq <= 2")   # they never went out
    ws.conn.execute("UPDATE exec_sends SET state = 'failed', reason = 'recipient_never:opted_out' "
                    "WHERE send_id = 3")
    s = emu.run(ws, p, retry_failed="transient")
    assert s.retried_failed == 2 and s.sent == 2
    assert ledger(ws, p.plan_id) == {"sent": 5, "failed": 1}
    with pytest.raises(Exception, match="not a transient failure"):
        emu.run(ws, p, retry_failed="recipient_never:opted_out")
    r = cli("execute", tmp_path / "plan.json", "--execute", "--retry-failed", "fix_payload:1",
            "--base-url", "http://127.0.0.1:9")
    assert r.exit_code == 2 and "not a transient failure" in r.output


# ---------------------------------------------------------------------------- 13.6 / 14.7 saying what happened
def test_exit_codes_say_how_a_run_ended():
    from migrator.execute import ExecutionSummary

    assert ExecutionSummary("p", "execute", outcome="interrupted", signal="SIGINT").exit_code == 130
    assert ExecutionSummary("p", "execute", outcome="interrupted", signal="SIGTERM").exit_code == 143
    assert ExecutionSummary("p", "execute", outcome="interrupted").exit_code == 1      # network down
    assert ExecutionSummary("p", "execute", outcome="stopped").exit_code == 1
    assert ExecutionSummary("p", "execute", outcome="waiting").exit_code == 0
    assert ExecutionSummary("p", "execute").to_json()["exit_code"] == 0


def test_a_lock_takeover_is_said_in_the_text_summary(ws, tmp_path):
    p = planned(ws, tmp_path, 3)
    ws.conn.execute("INSERT INTO exec_lock VALUES (1, 'ops@here', ?, ?, 1, 1, ?, 'n')",
                    (_dead_pid(), socket.gethostname(), p.plan_id))
    from migrator.cli.execute_cmds import _print

    emu = Emu(ws)
    s = emu.run(ws, p)
    assert s.lock_note and "took over" in s.lock_note
    import click.testing

    @click.command()
    def show():
        _print(s, True)

    out = click.testing.CliRunner().invoke(show).output
    assert "took over a stale lock" in out


def test_status_after_kill_says_interrupted_and_runs_record_how_they_ended(ws, tmp_path, cli):
    p = planned(ws, tmp_path, 5)
    emu = Emu(ws)
    emu.run(ws, p, batches=1)
    # a run killed with -9: its lock, its unfinished run row and in-flight rows stay behind
    pid = _dead_pid()
    ws.conn.execute("INSERT INTO exec_lock VALUES (1, 'ops@here', ?, ?, 1, 1, ?, 'n')",
                    (pid, socket.gethostname(), p.plan_id))
    ws.conn.execute("INSERT INTO exec_runs (plan_id, mode, started_at, pid, host, outcome) "
                    "VALUES (?, 'execute', 5, ?, ?, 'running')", (p.plan_id, pid, socket.gethostname()))
    ws.conn.execute("UPDATE exec_plans SET status = 'running'")
    st = execution_status(ws)
    assert st.lock.state == "interrupted (process gone)"
    assert st.plans[0].status == "interrupted (process gone)"
    text = cli("status").output
    assert "interrupted (process gone)" in text and "to send" in text and "planned" not in text.split("\n")[1]
    emu.run(ws, p)
    ended = [r for r in ws.conn.execute("SELECT outcome, ended FROM exec_runs ORDER BY id")]
    assert ended == [("done", "finished"), ("killed", "killed"), ("done", "finished")]
    from _plan import ingest, tok

    ingest(ws, tmp_path / "more", tokens=[tok(99)], name="more")
    with pytest.raises(Exception, match="stale"):
        emu.run(ws, p)
    assert ws.conn.execute("SELECT outcome, ended FROM exec_runs ORDER BY id DESC LIMIT 1").fetchone() == (
        "refused", "refused")


# ---------------------------------------------------------------------------- 12.2 / 12.4 what the executor writes
def test_the_executor_never_writes_tokens_and_its_feedback_keeps_the_plan_fresh(ws, tmp_path):
    p = planned(ws, tmp_path, 6)
    before = ws.conn.execute("SELECT * FROM tokens ORDER BY id").fetchall()
    emu = Emu(ws)
    emu.emulator.state.subscribers["TOKEN000001SECRET"].opted_out = True
    emu.emulator.state.subscribers["TOKEN000002SECRET"].expired = True
    s = emu.run(ws, p)
    assert s.mm_marked == 2
    assert ws.conn.execute("SELECT * FROM tokens ORDER BY id").fetchall() == before
    fb = ws.conn.execute("SELECT t.token, f.state, f.code, f.class, f.plan_id FROM mm_feedback f "
                         "JOIN tokens t ON t.id = f.token_id ORDER BY t.token").fetchall()
    assert fb == [("TOKEN000001SECRET", "opted_out", 2300034, "recipient_never", p.plan_id),
                  ("TOKEN000002SECRET", "expired", 2300037, "recipient_never", p.plan_id)]
    assert plan_staleness(ws, p) == []
    assert "exec_plans" in {r[0] for r in ws.conn.execute("SELECT name FROM sqlite_master")}
    assert "fingerprints" not in execute_plan.__doc__


def test_receipts_runs_are_recorded_as_receipts_gzip_and_rejects_included(ws, tmp_path):
    p = planned(ws, tmp_path, 4)
    hooks = tmp_path / "hooks.jsonl"
    emu = Emu(ws, webhooks=hooks)
    emu.run(ws, p)
    emu.emulator.webhooks.flush()
    gz = tmp_path / "hooks.jsonl.gz"
    gz.write_bytes(gzip.compress(hooks.read_bytes() + b"{broken\n"))
    r = ingest_receipts(ws, [gz])
    assert r.rejected == 1 and r.accepted >= 8
    run = ws.conn.execute("SELECT kind, format, file_sha256, rejected FROM ingest_runs ORDER BY id DESC").fetchone()
    assert run[0] == "receipts" and run[1] == "webhooks" and len(run[2]) == 64 and run[3] == 1
    assert ws.conn.execute("SELECT line, reason FROM rejects WHERE run_id = (SELECT MAX(id) FROM ingest_runs)"
                           ).fetchone()[0] > 0
    assert plan_staleness(ws, p) == []                 # receipts are not plan inputs
    assert json.loads(json.dumps(r.to_json()))


def test_the_summary_counts_the_rows_receipts_settled_at_the_start_of_a_run(ws, tmp_path):
    """The text summary printed "-1 sends settled by receipts ingested earlier" on every run: the
    UPDATE starts with WITH, and Python 3.11's sqlite3 gives such a statement rowcount -1."""
    p = planned(ws, tmp_path, 6)
    hooks = tmp_path / "hooks.jsonl"
    emu = Emu(ws, webhooks=hooks)
    assert emu.run(ws, p).settled_by_receipts == 0
    emu.emulator.webhooks.flush()
    ingest_receipts(ws, [hooks])
    _crash_after(ws, p.plan_id, [4, 5])
    s = emu.run(ws, p)
    assert s.settled_by_receipts == 2 and s.attempted == 0
    assert emu.run(ws, p).settled_by_receipts == 0

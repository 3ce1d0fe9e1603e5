"""The ledger's counters (exec_send_counts, kept by triggers) equal a fresh GROUP BY of exec_sends
after every path that writes the ledger, and `status` reads them instead of the ledger (issue 19.4)."""

from __future__ import annotations

from migrator.emulator import FaultProfile
from migrator.execute import execution_status, ingest_receipts
from migrator.execute.ledger import Ledger, Result
from migrator.store import open_workspace
from migrator.store.schema import MIGRATIONS
from _exec import Emu, ledger, planned
from _sqlite import tables_read


def _fresh(conn, schema="main") -> dict:
    return {r[:4]: r[4:] for r in conn.execute(
        f"SELECT plan_id, campaign_key, batch, state, COUNT(*), COUNT(delivered_at), COUNT(read_at) "
        f"FROM {schema}.exec_sends GROUP BY plan_id, campaign_key, batch, state")}


def _counters(conn, schema="main") -> dict:
    return {r[:4]: r[4:] for r in conn.execute(
        f"SELECT plan_id, campaign_key, batch, state, n, delivered, read FROM {schema}.exec_send_counts "
        "WHERE n != 0 OR delivered != 0 OR read != 0")}


def _same(conn, schema="main", *, what=""):
    fresh = _fresh(conn, schema)
    assert fresh, what
    assert _counters(conn, schema) == fresh, what


def test_counters_follow_every_ledger_path_of_a_real_run_with_faults(ws, tmp_path):
    p = planned(ws, tmp_path, 40, extra="batch_size = 15\n")
    hooks = tmp_path / "hooks.jsonl"
    emu = Emu(ws, webhooks=hooks, faults=FaultProfile(reset_rate=0.25, timeout_rate=0.1, http_5xx_rate=0.1,
                                                      delivery_failed_rate=0.1), seed=3)
    s = emu.run(ws, p, concurrency=8, batches=1)                     # ensure_rows, claim, record sent/unknown
    assert s.unknown > 0
    _same(ws.conn, what="after the first batch")
    states = set(ledger(ws, p.plan_id))
    assert {"planned", "sent", "unknown"} <= states, states

    emu.emulator.webhooks.flush()
    ingest_receipts(ws, [hooks])                                     # settle by receipts, delivered/read
    _same(ws.conn, what="after receipts")
    assert sum(v[1] for v in _counters(ws.conn).values()) > 0       # delivered_at counted

    # a kill -9 mid-send: rows left in flight, recovered at the next start
    ws.conn.execute("UPDATE exec_sends SET state = 'in_flight' WHERE plan_id = ? AND state = 'planned' "
                    "AND send_id IN (SELECT send_id FROM exec_sends WHERE state = 'planned' LIMIT 3)", (p.plan_id,))
    _same(ws.conn, what="after a crash")
    ws.conn.execute("UPDATE exec_sends SET state = 'failed', reason = 'retries_exhausted' "
                    "WHERE plan_id = ? AND send_id IN (SELECT send_id FROM exec_sends WHERE state = 'sent' LIMIT 2)",
                    (p.plan_id,))
    s = emu.run(ws, p, concurrency=8, resend_unknown=True, retry_failed="transient")   # recover, resend, retry
    assert s.recovered_unknown >= 3
    _same(ws.conn, what="after recovery, --resend-unknown and --retry-failed")

    # claim-time skips and the other closers, through the ledger itself
    lg = Ledger(ws.conn, p.plan_id, clock=emu.clock)
    ws.conn.execute("UPDATE exec_sends SET state = 'planned' WHERE plan_id = ? AND send_id IN (1, 2, 3, 4)",
                    (p.plan_id,))
    got = lg.claim("c1", 4, now=emu.clock() + 10 * 86400, max_batch=99)
    assert got
    lg.record([Result(c.send_id, "skipped", False, reason="stopped_at_claim") for c in got[:1]]
              + [Result(c.send_id, "failed", True, reason="x") for c in got[1:2]]
              + [Result(c.send_id, "planned", False, not_before=1) for c in got[2:]])
    _same(ws.conn, what="after a claim and its skip/fail/release")
    lg.close_campaign("c1", "skipped", "campaign_ended")
    _same(ws.conn, what="after close_campaign")
    assert lg.counts() == {st: ledger(ws, p.plan_id).get(st, 0) for st in lg.counts()}
    ws.conn.execute("DELETE FROM exec_sends WHERE plan_id = ? AND send_id <= 5", (p.plan_id,))
    _same(ws.conn, what="after a delete")


def test_the_dry_run_scratch_ledger_keeps_its_own_counters(ws, tmp_path):
    p = planned(ws, tmp_path, 30, extra="batch_size = 10\n")
    emu = Emu(ws)
    emu.run(ws, p, batches=1)                                        # a real ledger to copy from
    lg = Ledger.scratch(ws.conn, p.plan_id, batches=1, clock=emu.clock)
    try:
        assert lg.ensure_rows() == 30
        _same(ws.conn, "dry", what="copied")
        got = lg.claim("c1", 5, now=emu.clock() + 10 * 86400, max_batch=99)
        assert got
        lg.record([Result(c.send_id, "sent", True, tracking_id=f"t{c.send_id}") for c in got])
        _same(ws.conn, "dry", what="after a dry claim and record")
        assert lg.counts()["planned"] == 30 - 10 - len(got)
        assert lg.open_count("c1") == 30 - 10 - len(got)
    finally:
        lg.close_scratch()
    _same(ws.conn, what="the workspace's own ledger is untouched by the dry run")


def test_status_reads_the_counters_not_the_ledger(ws, tmp_path):
    """At 4.9M sends the ledger's GROUP BY took 15 s of `status`; SQLite's authorizer sees every
    table a statement reads."""
    p = planned(ws, tmp_path, 30, extra="batch_size = 10\n")
    emu = Emu(ws)
    emu.run(ws, p, batches=2)
    st, read = tables_read(ws.conn, lambda: execution_status(ws))
    assert "exec_sends" not in read and "plan_sends" not in read, sorted(read)
    ps = st.plans[0]
    assert (ps.sent, ps.to_send) == (20, 10)
    assert [(b.batch, b.sent, b.to_send) for b in ps.batches] == [(1, 10, 0), (2, 10, 0), (3, 0, 10)]


def test_the_migration_fills_the_counters_of_an_existing_ledger(db_path, tmp_path):
    ws = open_workspace(db_path)
    p = planned(ws, tmp_path, 20, extra="batch_size = 10\n")
    Emu(ws).run(ws, p, batches=1)
    # the workspace as a migrator before 0610 left it: no counters, no triggers
    ws.conn.executescript("""
        DROP TRIGGER exec_sends_count_insert; DROP TRIGGER exec_sends_count_update;
        DROP TRIGGER exec_sends_count_delete; DROP TABLE exec_send_counts;""")
    ws.conn.execute(f"DELETE FROM [{MIGRATIONS.migrations_table}] WHERE name = '0610_exec_send_counts'")
    ws.close()
    ws = open_workspace(db_path)
    try:
        _same(ws.conn, what="backfilled")
        assert execution_status(ws).plans[0].sent == 10
    finally:
        ws.close()

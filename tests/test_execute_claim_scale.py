"""A claim's cost does not grow with the ledger (issue 19.6: 17 sends/s on a 4.9M-row ledger).

Cost is counted in SQLite virtual-machine steps (a progress handler), not in seconds: the same
claim on a ledger with 40,000 more planned rows must run about the same number of steps. Before
the fix the claim's UPDATE walked every planned row of the plan through the `exec_sends_due`
index to test `send_id IN (...)`, so its steps grew with the ledger.
"""

from __future__ import annotations

import pytest

from migrator.execute.engine import _screen
from migrator.execute.ledger import Ledger
from migrator.execute.summary import ExecOptions
from migrator.plan import load_plan
from migrator.rules import load_rules
from _exec import AFTER_DAY_ONE, planned

EXTRA = 40_000


def _steps(conn, fn) -> tuple[int, object]:
    n = [0]

    def tick():
        n[0] += 1
        return 0

    conn.set_progress_handler(tick, 50)
    try:
        out = fn()
    finally:
        conn.set_progress_handler(None, 0)
    return n[0] * 50, out


def _pad(ws, plan_id, schema="main"):
    """EXTRA planned rows of the same plan in another campaign (a big ledger, none of it due here)."""
    ws.conn.execute(
        f"WITH RECURSIVE n(i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM n WHERE i < {1000 + EXTRA - 1}) "
        f"INSERT INTO {schema}.exec_sends (plan_id, send_id, token_id, campaign_key, message_key, batch, "
        "not_before, updated_at) SELECT ?, i, 1, 'other-campaign', 'm', 1, 0, 0 FROM n", (plan_id,))


def _claim_steps(ws, lg, key, send_id_min):
    """Steps of claiming one row, then of a claim that finds nothing due."""
    steps, rows = _steps(ws.conn, lambda: lg.claim(key, 1, now=AFTER_DAY_ONE, max_batch=10**6))
    assert len(rows) == 1 and rows[0].send_id >= send_id_min
    return steps


@pytest.mark.parametrize("screen", [False, True])
def test_claim_steps_do_not_grow_with_the_ledger(ws, tmp_path, screen):
    p = planned(ws, tmp_path, 20)
    lg = Ledger(ws.conn, p.plan_id, clock=lambda: AFTER_DAY_ONE)
    lg.ensure_rows()
    if screen:
        lg.screen = _screen(ws.conn, load_plan(tmp_path / "plan.json"), lg, load_rules(),
                            ExecOptions(execute=True), lambda m: None)
    key = p.campaigns[0].key
    small = _claim_steps(ws, lg, key, 0)
    _pad(ws, p.plan_id)
    big = _claim_steps(ws, lg, key, 0)
    assert big < small * 2 + 2_000, (small, big)


def test_dry_run_claim_steps_do_not_grow_with_the_ledger(ws, tmp_path):
    p = planned(ws, tmp_path, 20)
    Ledger(ws.conn, p.plan_id).ensure_rows()
    lg = Ledger.scratch(ws.conn, p.plan_id, clock=lambda: AFTER_DAY_ONE)
    try:
        key = p.campaigns[0].key
        small = _claim_steps(ws, lg, key, 0)
        _pad(ws, p.plan_id, "dry")
        big = _claim_steps(ws, lg, key, 0)
        assert big < small * 2 + 2_000, (small, big)
    finally:
        lg.close_scratch()

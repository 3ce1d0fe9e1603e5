"""The execution report over a real send ledger: the executor runs a plan against the
in-process emulator (some subscribers opted out, some sends left unknown by a "crash")."""

from __future__ import annotations

import json

import pytest
from _report import embedded_json, external_refs, secrets

from migrator.report import build_execution_report, make_report, render_report
from _exec import Emu, planned


@pytest.fixture
def executed(ws, tmp_path):
    p = planned(ws, tmp_path, 12, extra="batch_size = 4")
    emu = Emu(ws)
    for i in (1, 2):
        emu.emulator.state.subscribers[f"TOKEN{i:06d}SECRET"].opted_out = True
    emu.run(ws, p, batches=2)
    # a run that died with two requests in flight: the executor turns them into unknown
    ws.conn.execute("UPDATE exec_sends SET state = 'in_flight' WHERE plan_id = ? AND state = 'sent'"
                    " AND send_id IN (SELECT send_id FROM exec_sends WHERE plan_id = ? AND state = 'sent'"
                    " ORDER BY send_id LIMIT 2)", (p.plan_id, p.plan_id))
    return ws, p


def _ledger(ws, plan_id):
    return dict(ws.conn.execute("SELECT state, COUNT(*) FROM exec_sends WHERE plan_id = ? GROUP BY state",
                                (plan_id,)).fetchall())


def test_counts_per_plan_campaign_and_batch_match_the_ledger(executed):
    ws, p = executed
    states = _ledger(ws, p.plan_id)
    r = build_execution_report(ws, plan=p.plan_id, clock=lambda: 1_772_600_000)
    assert r.ledger and r.ledger_note is None
    t = r.totals
    assert t.planned == p.sends == sum(states.values())
    assert t.sent == states.get("sent", 0)
    assert t.unknown == states.get("unknown", 0) + states.get("in_flight", 0) == 2
    assert t.failed == states.get("failed", 0) and t.skipped == states.get("skipped", 0)
    assert (t.failed or 0) + (t.skipped or 0) == 2          # the two opted-out subscribers
    assert sum(c.counts.sent for c in r.campaigns) == t.sent
    assert sum(b.counts.planned for b in r.batches) == t.planned and len(r.batches) == 3
    assert r.batches[2].counts.sent == 0                    # the third batch has not run
    assert sum(x.sent for x in r.throughput) == t.sent


def test_error_codes_carry_their_meaning_and_next_steps_say_how_to_resume(executed):
    ws, p = executed
    r = build_execution_report(ws, plan=p.plan_id)
    codes = {e.code: e for e in r.errors}
    assert "2300034" in codes and codes["2300034"].count == 2
    assert "opted out" in codes["2300034"].meaning and codes["2300034"].error_class == "recipient_never"
    steps = " ".join(r.next_steps)
    assert "migrator execute PLAN.json --execute" in steps
    assert "2 sends are unknown" in steps and "migrator ingest receipts" in steps


def test_the_report_file_is_safe(executed, tmp_path):
    ws, p = executed
    paths = make_report(ws, "execution", out=tmp_path / "x.html")
    html = paths.paths[0].read_text(encoding="utf-8")
    assert [s for s in secrets(ws) if s in html] == []
    assert "sys-token-SECRET" not in html                   # the access token used for the run
    assert external_refs(html) == []
    assert json.loads(embedded_json(html)) == paths.model.model_dump(mode="json")
    assert "2300034" in render_report(paths.model)


def test_the_ledger_report_loads_cleanly_in_chromium(executed, tmp_path):
    from _browser import chromium_path, load_page

    if chromium_path() is None:
        pytest.skip("chromium is not installed")
    ws, p = executed
    html = make_report(ws, "execution", out=tmp_path / "x.html").paths[0]
    page = load_page(html, expression="document.querySelectorAll('svg.chart rect').length")
    assert page.errors() == [] and page.requests == [html.resolve().as_uri()]
    assert page.value > 2
    (tmp_path / "execution.png").write_bytes(page.screenshot)

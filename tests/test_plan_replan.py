"""A plan made again after a cutover leaves out who already moved to MM (`already_moved`).

Real SQLite workspace, the in-process emulator on a virtual clock, `migrator plan` through
click's CliRunner. The earlier plan stays fresh and resumable; the claim-time check
`sent_by_another_plan` stays the second guard (tests/test_execute_claim.py).
"""

from __future__ import annotations

import json

from migrator.inventory import ingest_tokens
from migrator.plan import load_plan, plan_staleness
from _exec import Emu, planned
from _plan import AS_OF, spec_file, tok
from conftest import webhook, write_jsonl


def _ledger(ws, plan_id):
    return {t: (s, r) for t, s, r in ws.conn.execute(
        "SELECT t.token, e.state, e.reason FROM exec_sends e JOIN tokens t ON t.id = e.token_id"
        " WHERE e.plan_id = ?", (plan_id,))}


def _replan(cli, tmp_path, name="again.json"):
    spec = spec_file(tmp_path / "spec", "batch_size = 20")      # the same spec as the first plan
    r = cli("plan", spec, "--as-of", AS_OF.isoformat(), "-o", tmp_path / name)
    assert r.exit_code == 0, r.output
    return r.output, load_plan(tmp_path / name)


def test_a_plan_made_again_after_a_partial_cutover_leaves_out_who_moved_and_does_not_cost_them(ws, tmp_path, cli):
    a = planned(ws, tmp_path, 60, extra="batch_size = 20")
    assert a.sends == 60 and a.estimated_cost == {"USD": 120}
    emu = Emu(ws)
    assert emu.run(ws, a, batches=1).sent == 20
    out, b = _replan(cli, tmp_path)
    assert b.plan_id != a.plan_id                      # a's rows and ledger stay as they were
    assert b.sends == 40 and b.excluded["already_moved"] == 20
    assert b.estimated_cost == {"USD": 80} and sum(c.estimated_cost for c in b.campaigns) == 80
    assert "20 subscriptions already moved to MM by earlier plans (a send accepted by Meta) are left out" in out
    assert any(line.split() == ["-", "already_moved", "20"] for line in out.splitlines()), out
    moved = {t for t, (s, _) in _ledger(ws, a.plan_id).items() if s == "sent"}
    planned_b = {t for (t,) in ws.conn.execute("SELECT t.token FROM plan_sends s JOIN tokens t ON t.id = s.token_id"
                                               " WHERE s.plan_id = ?", (b.plan_id,))}
    excluded_b = {t for (t,) in ws.conn.execute(
        "SELECT t.token FROM plan_excluded x JOIN tokens t ON t.id = x.token_id WHERE x.plan_id = ?"
        " AND x.reason = 'already_moved'", (b.plan_id,))}
    assert excluded_b == moved and not planned_b & moved and len(planned_b | moved) == 60
    # the plan file carries the count, never a token
    text = (tmp_path / "again.json").read_text()
    assert json.loads(text)["excluded"]["already_moved"] == 20 and "TOKEN0" not in text


def test_the_partially_executed_plan_stays_fresh_resumes_and_nobody_is_messaged_twice(ws, tmp_path, cli):
    a = planned(ws, tmp_path, 60, extra="batch_size = 20")
    emu = Emu(ws)
    assert emu.run(ws, a, batches=1).sent == 20          # a crash or a stop after the first batch
    _, b = _replan(cli, tmp_path)
    assert b.plan_id != a.plan_id
    a_file = load_plan(tmp_path / "plan.json")
    assert plan_staleness(ws, a_file) == []              # its own accepted sends do not make it stale
    resumed = emu.run(ws, a_file)                        # resume the first plan: the other 40
    assert resumed.sent == 40 and resumed.outcome == "done"
    # the second plan was made before those 40 were accepted: the claim-time guard skips them
    s = emu.run(ws, b)
    assert s.sent == 0 and s.skipped == 40
    assert {v for v in _ledger(ws, b.plan_id).values()} == {("skipped", "sent_by_another_plan")}
    accepted = [x.token for x in emu.accepted()]
    assert len(accepted) == len(set(accepted)) == 60, "a person was messaged twice"
    # made again now, nobody is left: a plan of zero sends that says why
    out, c = _replan(cli, tmp_path, "third.json")
    assert c.sends == 0 and c.excluded["already_moved"] == 60 and c.estimated_cost == {}
    assert "already moved to MM by earlier plans" in (c.zero_send_reason or ""), c.zero_send_reason
    assert "60 subscriptions already moved to MM by earlier plans" in out


def test_planning_again_without_new_accepted_sends_gives_the_same_plan(ws, tmp_path, cli):
    a = planned(ws, tmp_path, 30, extra="batch_size = 20")
    _, same = _replan(cli, tmp_path)                     # nothing sent yet: the same plan, the same id
    assert same.plan_id == a.plan_id and same.sends == 30 and "already_moved" not in same.excluded
    emu = Emu(ws)
    assert emu.run(ws, same, batches=1).sent == 20
    _, b1 = _replan(cli, tmp_path, "b1.json")
    _, b2 = _replan(cli, tmp_path, "b2.json")            # made again with nothing new accepted
    assert b1.plan_id == b2.plan_id != a.plan_id and b2.sends == 10 and b2.sends_digest == b1.sends_digest


def test_another_token_of_a_moved_person_is_left_out_too(ws, tmp_path):
    from migrator.audit import run_audit

    from _plan import ingest, plan

    a = planned(ws, tmp_path, 3)
    emu = Emu(ws)
    assert emu.run(ws, a).sent == 3
    # the same person (page P1, PSID000001) stops the old RN token and opts in again with a new
    # one, on a topic of its own: the audit makes the new token the person's migrate token
    ingest(ws, tmp_path / "more", tokens=[dict(tok(901, topic="News"), psid="PSID000001"), tok(902, topic="News")],
           content=[{"page_id": "P1", "key": "news", "topic_title": "News", "message": {"text": "News!"}}],
           name="more")
    stop = write_jsonl(tmp_path / "stop.jsonl", [webhook("P1", "PSID000001", "TOKEN000001SECRET", 10**12 * 2,
                                                         status="STOP NOTIFICATIONS",
                                                         notification_messages_timezone="America/New_York")])
    ingest_tokens(ws, [stop])
    run_audit(ws, as_of=AS_OF)
    b = plan(ws, tmp_path / "spec-b")
    planned_b = {t for (t,) in ws.conn.execute("SELECT t.token FROM plan_sends s JOIN tokens t ON t.id = s.token_id"
                                               " WHERE s.plan_id = ?", (b.plan_id,))}
    why = dict(ws.conn.execute("SELECT t.token, x.reason FROM plan_excluded x JOIN tokens t ON t.id = x.token_id"
                               " WHERE x.plan_id = ?", (b.plan_id,)).fetchall())
    primary = ws.conn.execute("SELECT a.is_primary FROM audit_tokens a JOIN tokens t ON t.id = a.token_id"
                              " WHERE t.token = 'TOKEN000901SECRET' AND a.run_id = (SELECT MAX(id) FROM audit_runs)"
                              ).fetchone()[0]
    assert "TOKEN000902SECRET" in planned_b                  # a new person on the topic: planned
    assert "TOKEN000901SECRET" not in planned_b
    assert primary == 1, "the audit keeps one token per person: the new one on its own topic"
    assert why["TOKEN000901SECRET"] == "already_moved"


def test_planning_again_while_the_plan_waits_with_nothing_accepted_leaves_its_file_resumable(ws, tmp_path):
    """A run that left only planned rows (waiting for the window; the same with every answer
    lost): planning again a minute later gives the same plan id; it must not rewrite that plan so
    that its file, the one the README's resume command runs, reads as stale."""
    from migrator.plan import make_plan

    from _exec import ledger

    a = planned(ws, tmp_path, 30, extra="batch_size = 20")
    emu = Emu(ws, start=1_772_420_000)                  # 2026-03-02 02:53 UTC: the window is not open yet
    s = emu.run(ws, a, wait=False)
    assert s.sent == 0 and s.outcome == "waiting" and ledger(ws, a.plan_id) == {"planned": 30}
    again = make_plan(ws, spec_file(tmp_path / "spec", "batch_size = 20"), as_of=AS_OF,
                      clock=lambda: 1_772_000_060)       # someone plans again a minute later, to look
    assert again.plan_id == a.plan_id
    a_file = load_plan(tmp_path / "plan.json")
    assert plan_staleness(ws, a_file) == []
    # a colleague's copy of the spec elsewhere: the same inputs, the same plan, still fresh
    copy = make_plan(ws, spec_file(tmp_path / "colleague", "batch_size = 20"), as_of=AS_OF,
                     clock=lambda: 1_772_000_120, out=tmp_path / "copy.json")
    assert copy.plan_id == a.plan_id
    assert plan_staleness(ws, a_file) == [] and plan_staleness(ws, load_plan(tmp_path / "copy.json")) == []
    emu.clock.advance(20 * 3600)
    assert emu.run(ws, a_file).sent == 30

"""Reports after the cutover, on the demo path (sample -> audit -> plan -> execute -> receipts):
a page whose planned subscribers all moved reads as done, every action's count is the figure of
its own row, and money shows in major units with its basis."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3


from migrator.audit import run_audit
from migrator.report import build_audit_report, build_execution_report, build_readiness_report, render_report
from migrator.store import open_workspace
from _demo import CLOCK, demo, readiness_pages, ws  # noqa: F401  (fixtures)

ACME, BRISA, CHAI = "949326690342998", "972523173123147", "616223534296369"


_pages = readiness_pages


def test_a_page_fully_sent_reads_as_done_with_moved_delivered_read(ws):
    r = build_readiness_report(ws, clock=CLOCK)
    pages = {p.page_id: p for p in r.pages}
    acme = pages[ACME]
    sent, delivered, read = ws.conn.execute(
        "SELECT SUM(state = 'sent'), SUM(delivered_at IS NOT NULL), SUM(read_at IS NOT NULL) FROM exec_sends e"
        " JOIN tokens t ON t.id = e.token_id WHERE t.page_id = ?", (ACME,)).fetchone()
    assert sent > 0
    # the plan's sends are through; its small daily budget left people out, so the page is not done
    assert acme.audit_status == "needs_action" and acme.subscribers.move > 0 and acme.status == "needs_action"
    assert any(a.counts == "move" and a.count == acme.subscribers.move for a in acme.actions)
    cu = acme.cutover
    assert cu.state == "done" and cu.sent == sent and cu.to_send == cu.unknown == 0
    assert cu.sent + cu.failed + cu.skipped == cu.planned      # failures left are the recipients' own
    assert (acme.cutover.delivered, acme.cutover.read) == (delivered, read)
    # subscriptions: every migrate subscription of a person who got an accepted send has moved
    s = acme.subscribers
    assert s.moved >= sent and s.delivered <= s.moved and 0 < s.read <= s.delivered
    assert s.move + s.moved == ws.conn.execute(
        "SELECT migrate FROM audit_pages WHERE page_id = ?", (ACME,)).fetchone()[0]
    assert s.total == s.move + s.moved + s.stay + s.lost + s.opted_out + s.undecided
    # no page that sent anything still says "move" everything it had
    for p in r.pages:
        if p.cutover and p.cutover.sent:
            assert p.subscribers.moved > 0
            assert all(not (a.counts == "move" and a.count >= p.subscribers.move + p.subscribers.moved)
                       for a in p.actions)
    # done means the sends are through and nobody is left to move, on every page
    for p in r.pages:
        assert (p.status == "done") == (p.cutover is not None and p.cutover.state == "done"
                                        and p.subscribers.move == 0), p.page_id
    assert r.statuses["done"] == sum(p.status == "done" for p in r.pages) >= 1
    html = render_report(r)
    assert "Done" in html and f"{s.moved:,} moved to MM" in html


def test_a_fresh_audit_after_the_cutover_still_reads_done(ws):
    before = _pages(ws)[ACME]
    run_audit(ws, clock=CLOCK)
    after = _pages(ws)[ACME]
    # what Meta refused for good is now the audit's own (e.g. wrong region -> lost); what moved stays moved
    assert after.status == before.status and after.cutover == before.cutover
    assert (after.subscribers.moved, after.subscribers.delivered) == (before.subscribers.moved,
                                                                     before.subscribers.delivered)
    assert after.subscribers.move <= before.subscribers.move


def test_a_page_with_sends_to_go_is_under_way_not_done(ws):
    key = ws.conn.execute("SELECT campaign_key FROM exec_sends e JOIN tokens t ON t.id = e.token_id"
                          " WHERE t.page_id = ? LIMIT 1", (BRISA,)).fetchone()[0]
    # an interrupted run: some of the page's sends were never tried
    ws.conn.execute("UPDATE exec_sends SET state = 'planned', sent_at = NULL, delivered_at = NULL, read_at = NULL"
                    " WHERE campaign_key = ? AND send_id % 2 = 0", (key,))
    p = _pages(ws)[BRISA]
    assert p.status == p.audit_status == "needs_action"
    assert p.cutover.state == "in_progress" and p.cutover.to_send > 0
    assert any("is under way" in a.what and a.count == p.subscribers.move for a in p.actions)


def test_receipts_kept_on_a_row_whose_state_is_not_sent_still_count_as_moved(ws):
    # however the ledger records an outcome, a delivery receipt means the message went out
    ws.conn.execute("UPDATE exec_sends SET state = 'unknown' WHERE token_id IN"
                    " (SELECT id FROM tokens WHERE page_id = ?)", (CHAI,))
    p = _pages(ws)[CHAI]
    assert p.subscribers.moved > 0 and p.cutover.state == "in_progress" and p.cutover.unknown > 0


def test_a_page_whose_campaign_meta_stopped_is_stopped_not_done(ws):
    # Meta stopped the campaign (e.g. 2300001): the executor skips its sends with reason
    # campaign_stopped:<code>; nothing was delivered and the partner must fix the cause, so the
    # page is neither done nor under way, and the audit does not count it as done either
    ws.conn.execute("UPDATE exec_sends SET state = 'skipped', reason = 'campaign_stopped:2300001', sent_at = NULL,"
                    " delivered_at = NULL, read_at = NULL WHERE token_id IN (SELECT id FROM tokens WHERE page_id = ?)",
                    (CHAI,))
    r = build_readiness_report(ws, clock=CLOCK)
    p = {p.page_id: p for p in r.pages}[CHAI]
    assert p.cutover.state == "stopped" and p.cutover.sent == 0 and p.cutover.skipped == p.cutover.planned
    assert p.status == "needs_action" and p.subscribers.moved == 0 and p.subscribers.move > 0
    html = render_report(r)
    lines = [m for m in re.findall(r"<p>Cutover.*?</p>", html, re.S) if f"of {p.cutover.planned} messages" in m]
    assert len(lines) == 1 and "<strong>done</strong>" not in lines[0] and "<strong>stopped</strong>" in lines[0]


def test_the_execution_report_does_not_call_a_stopped_campaign_nothing_left_to_do(ws):
    ws.conn.execute("UPDATE exec_sends SET state = 'skipped', reason = 'campaign_stopped:2300001', sent_at = NULL,"
                    " delivered_at = NULL, read_at = NULL, error_code = NULL")
    ex = build_execution_report(ws, clock=CLOCK)
    assert not any("Nothing left to do" in s for s in ex.next_steps), ex.next_steps
    assert any("Meta stopped" in s and f"{ex.totals.skipped:,} sends" in s for s in ex.next_steps), ex.next_steps
    row = next(e for e in ex.errors if "campaign_stopped" in e.code)
    assert row.error_class == "stop_campaign" and "2300001" in row.meaning and "no Graph error code" not in row.meaning


def test_planning_again_after_the_cutover_keeps_done_pages_done(ws, tmp_path):
    # the reports say "re-run `migrator plan`" once the audit is newer than the plan; the new plan
    # leaves out the people the first plan moved (already_moved), and must not turn a page whose
    # subscribers all moved (so it has no sends in the new plan) back into "needs action"
    from migrator.demo import sample_spec_path
    from migrator.plan import make_plan

    first = ws.conn.execute("SELECT plan_id FROM plans").fetchone()[0]
    before = {p.page_id: p.status for p in build_readiness_report(ws, clock=CLOCK).pages}
    run_audit(ws, clock=CLOCK)
    again = make_plan(ws, sample_spec_path(), out=tmp_path / "again.json", clock=CLOCK)
    assert again.plan_id != first and again.excluded["already_moved"] > 0
    r = build_readiness_report(ws, clock=CLOCK)
    after = {p.page_id: p for p in r.pages}
    assert before[CHAI] == "done" and after[CHAI].status == "done", after[CHAI].cutover
    assert {k: p.status for k, p in after.items()} == before
    cu = after[CHAI].cutover       # the cutover of the plan that moved them
    assert cu.plan_id == first and cu.state == "done" and cu.to_send == cu.already_reached == 0 and cu.sent > 0
    assert r.statuses["done"] == build_audit_report(ws, clock=CLOCK).pages_done
    line = next(m for m in re.findall(r"<p>Cutover.*?</p>", render_report(r), re.S) if f"of {cu.planned} messages" in m)
    assert "<strong>done</strong>" in line and "to send" not in line and "more message" not in line


def test_add_a_country_counts_the_subscriptions_the_crm_file_lists(demo, ws, tmp_path):
    # Global Gadgets has no business country: most of its undecided subscriptions wait on that,
    # not on their own country; "add an explicit country (e.g. from the CRM)" counts only those
    # whose recipient country is unclear, the rows of needs-country.csv handed to the CRM team
    import csv

    from click.testing import CliRunner

    from migrator.cli import main

    r = CliRunner().invoke(main, ["--db", str(demo), "report", "crm", "-o", str(tmp_path / "crm")])
    assert r.exit_code == 0, r.output
    with open(tmp_path / "crm" / "needs-country.csv", encoding="utf-8-sig", newline="") as f:
        listed: dict[str, int] = {}
        for row in csv.DictReader(f):
            listed[row["page_id"]] = listed.get(row["page_id"], 0) + 1
    pages = _pages(ws)
    review = {pid: a.count for pid, p in pages.items() for a in p.actions if a.code == "REVIEW_TOKENS"}
    assert review == listed
    gg = next(p for p in pages.values() if p.name == "Global Gadgets")
    assert gg.subscribers.needs_country < gg.subscribers.undecided
    assert any(a.code == "PAGE_BUSINESS_COUNTRY_UNKNOWN" and a.count == gg.subscribers.undecided for a in gg.actions)


def test_a_done_page_does_not_say_rn_stopped_only_for_its_undecided(ws):
    # RN stopped for the moved subscriptions too; the label counts those neither on MM nor sure to keep RN
    chai = _pages(ws)[CHAI]
    assert chai.status == "done" and chai.subscribers.moved > 0
    assert chai.deadline_label == (f"RN stopped on 2026-02-10, 293 days ago: {chai.subscribers.undecided} of these "
                                   "subscriptions are neither on MM nor sure to keep RN")


def test_the_audit_counts_the_same_done_pages_as_readiness(ws):
    readiness = build_readiness_report(ws, clock=CLOCK)
    done = sum(p.status == "done" for p in readiness.pages)
    assert readiness.statuses["done"] == done
    # Acme's plan is through but its small budget left people to move: done for neither report
    assert build_audit_report(ws, clock=CLOCK).pages_done == done


NUMBER = re.compile(r"\b(\d[\d,]*) subscriptions?\b")
MESSAGES = re.compile(r"\b(\d[\d,]*) messages?\b")


def row_figure(p, a):
    """The figure of the page row that the action counts: a `subscribers` figure, or for messages
    the row's own count of messages to approve."""
    if a.unit == "messages":
        return getattr(p, a.counts)
    return getattr(p.subscribers, a.counts)


def check_actions(r) -> set[str]:
    """Every action of every page carries a count that is its row's own figure; the codes seen."""
    seen = set()
    for p in r.pages:
        s = p.subscribers
        for a in p.actions:
            seen.add(a.code)
            assert a.count is not None and a.counts is not None, (p.name, a.code, a.what)
            assert a.count == row_figure(p, a), (p.name, a)
            m = (MESSAGES if a.unit == "messages" else NUMBER).search(a.what)
            assert m and int(m.group(1).replace(",", "")) == a.count, (p.name, a.what)
            assert 0 < a.count <= (p.approvals_total if a.unit == "messages" else s.total)
    return seen


def test_every_action_count_is_its_rows_figure_on_every_page_of_the_sample(ws):
    r = build_readiness_report(ws, clock=CLOCK)
    assert r.pages_total == 12
    checked = 0
    seen = check_actions(r)
    assert {"RN_DAILY_FREQUENCY_LOST", "PAGE_CONTENT_NEEDS_WORK", "PAGE_BUSINESS_COUNTRY_UNSUPPORTED",
            "PAGE_BUSINESS_COUNTRY_UNKNOWN", "REVIEW_TOKENS", "RN_DISCONTINUED"} <= seen, seen
    for p in r.pages:
        s = p.subscribers
        for a in p.actions:
            checked += 1
            # never ask to move subscriptions the row says nobody needs to move
            if a.code in ("RN_DISCONTINUED", "RN_DISCONTINUATION_COUNTDOWN"):
                assert a.counts == "move" and s.move > 0
        assert (s.move > 0) == any(a.code.startswith("RN_DISCONTINU") for a in p.actions), p.name
        assert (s.lost > 0 and "BLOCKED_TOKENS" in p.reasons) == any(a.counts == "lost" for a in p.actions)
        # "add a country" counts those whose own country is unclear (a page without a business
        # country has more undecided: its PAGE_BUSINESS_COUNTRY_UNKNOWN action counts them all)
        assert (s.needs_country > 0 and "REVIEW_TOKENS" in p.reasons) == any(a.counts == "needs_country"
                                                                              for a in p.actions)
        approve = [a for a in p.actions if a.code == "PAGE_CONTENT_NEEDS_WORK"]
        assert bool(approve) == bool(p.approvals), p.name
        if approve:
            assert approve[0].count == p.approvals_total >= len(p.approvals)
            assert all(m.first_words and m.why for m in p.approvals)
    assert checked > 15
    html = render_report(r).split("<script")[0]
    assert not re.search(r"(?<!http)\(s\)", html) and not re.search(r"\b1 (subscriptions|pages|messages|days|sends)\b", html)
    assert not re.search(r"\b(0|[2-9]|\d\d+) (subscription|page|message|day|send)\b(?!s)", html)


def test_money_in_major_units_with_its_basis_on_the_demo_path(ws):
    pages = _pages(ws)
    cost = {p.page_id: p.cost[0] for p in pages.values() if p.cost}
    # sample.toml: USD 2, BRL 6, INR 80 minor units per message
    assert cost[ACME].estimated_cost == f"USD {cost[ACME].sends * 2 / 100:,.2f}"
    assert cost[BRISA].estimated_cost == f"BRL {cost[BRISA].sends * 6 / 100:,.2f}"
    assert cost[CHAI].estimated_cost == f"INR {cost[CHAI].sends * 80 / 100:,.2f}"
    ex = build_execution_report(ws, clock=CLOCK)
    for c in ex.campaigns:
        assert c.spent.startswith(c.currency + " ") and c.accepted_cost.startswith(c.currency + " ")
    html = render_report(ex)
    assert "estimated" in html and "accepted" in html and "delivered" in html
    assert "minor units" not in html


def test_readiness_cost_says_what_meta_accepted_as_status_does(demo, ws, tmp_path):
    # after the cutover the cost line is not only the plan's estimate: the spend Meta accepted and
    # delivered, at the plan's cost per message, the same figure `status --json` sums per currency
    from click.testing import CliRunner

    from migrator.cli import main

    pages = _pages(ws)
    chai = pages[CHAI].cost[0]
    assert chai.sent == pages[CHAI].cutover.sent and chai.accepted_cost_minor == chai.sent * 80
    assert chai.accepted_cost == f"INR {chai.sent * 80 / 100:,.2f}" and chai.delivered == pages[CHAI].cutover.delivered
    got = {}
    for p in pages.values():
        for c in p.cost:
            got[c.currency] = got.get(c.currency, 0) + c.accepted_cost_minor
    r = CliRunner().invoke(main, ["--db", str(demo), "status", "--json"])
    assert r.exit_code == 0, r.output
    status = json.loads(r.output)["plans"][-1]
    assert status["spend"] == got
    # the JSON says the figure as the reports do: major units, the currency's decimals, its basis
    assert {f["currency"]: f["text"] for f in status["spend_figures"]}["INR"] == chai.accepted_cost
    assert {f["basis"] for f in status["spend_figures"]} == {"accepted"}
    c = next(c for c in status["campaigns"] if c["currency"] == "INR")
    assert c["spend_figure"] == {"minor": c["spend"], "currency": "INR", "text": chai.accepted_cost,
                                 "basis": "accepted"}
    html = render_report(build_readiness_report(ws, clock=CLOCK))
    assert f"<strong>{chai.accepted_cost} accepted</strong>" in html


def test_status_and_plan_cli_show_major_units(demo, tmp_path):
    from click.testing import CliRunner

    from migrator.cli import main

    db = tmp_path / "c.db"
    shutil.copy(demo, db)
    out = CliRunner().invoke(main, ["--db", str(db), "status"]).output
    assert "USD 3.84" in out or re.search(r"USD \d+\.\d\d accepted", out), out
    assert re.search(r"VND [\d,]+ accepted", out) and "VND 12,000.00" not in out
    assert "{" not in out and "planned" not in out
    conn = sqlite3.connect(db)
    conn.close()


def test_per_page_writes_one_clean_file_per_business_and_an_index(demo, tmp_path):
    from click.testing import CliRunner

    from migrator.cli import main

    db = tmp_path / "w.db"
    shutil.copy(demo, db)
    out = tmp_path / "to-send"
    r = CliRunner().invoke(main, ["--db", str(db), "report", "readiness", "--per-page", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 12 business files" in r.output
    files = sorted(p for p in out.iterdir() if p.name != "index.html")
    assert len(files) == 12 and (out / "index.html").is_file()
    conn = sqlite3.connect(db)
    pages = dict(conn.execute("SELECT page_id, name FROM pages"))
    internals = [str(db), db.name, str(demo), "migration.db"]
    internals += [f[:12] for (f,) in conn.execute("SELECT fingerprint FROM plans")]
    internals += [f[:12] for (f,) in conn.execute("SELECT rules_fingerprint FROM audit_runs")]
    internals += [p for (p,) in conn.execute("SELECT plan_id FROM plans")]
    raw = [t for (t,) in conn.execute("SELECT token FROM tokens")] + \
        [p for (p,) in conn.execute("SELECT psid FROM tokens WHERE psid IS NOT NULL")]
    conn.close()
    index = (out / "index.html").read_text()
    for pid, name in pages.items():
        mine = [f for f in files if f.name.endswith(f"-{pid}.html")]
        assert len(mine) == 1, pid                          # named by page name and id
        assert re.fullmatch(r"[a-z0-9-]+-\d+\.html", mine[0].name)
        assert mine[0].name in index
        html = mine[0].read_text()
        assert name in html and pid in html
        for other, other_name in pages.items():
            if other != pid:
                assert other not in html and other_name not in html, (mine[0].name, other_name)
        for secret in internals:
            assert secret not in html, (mine[0].name, secret)
        visible = html.split('<script type="application/json"')[0]
        assert "Rules in force" not in visible and "audit run" not in visible and "workspace" not in visible
        assert '"workspace":""' in html and '"audit_run_id":null' in html and '"rules":[]' in html
        assert not any(t in html for t in raw)
        assert "Prepared with migrator" in html            # provenance: a short footer
    acme = next(f for f in files if ACME in f.name).read_text()
    # which message needs approval: topic, first words and why, not "some of this page's messages"
    from markupsafe import escape

    from migrator.store import open_workspace

    w = open_workspace(db)
    (model,) = build_readiness_report(w, page=ACME, clock=CLOCK).pages
    w.close()
    assert model.approvals and "some of this page" not in acme and "to approve or replace" in acme
    for m in model.approvals:
        assert str(escape(m.topic)) in acme and str(escape(m.first_words)) in acme
        assert all(str(escape(w)) in acme for w in m.why)


def test_execution_report_lists_every_run_in_both_outcome_vocabularies(ws):
    plan_id = ws.conn.execute("SELECT plan_id FROM exec_runs").fetchone()[0]
    (first,) = build_execution_report(ws, clock=CLOCK).runs
    assert first.outcome == "done" and first.mode == "execute" and first.sent > 0 and first.finished_at
    assert "finished" in first.outcome_label and not first.resumed
    # later runs as the executor records them now (finished | interrupted | killed | refused) and a
    # row whose process died before recording anything
    rows = [(1_796_100_000, 1_796_100_050, "interrupted"), (1_796_100_100, None, None),
            (1_796_100_200, 1_796_100_201, "refused"), (1_796_100_300, 1_796_100_400, "killed"),
            (1_796_100_500, 1_796_100_600, "finished")]
    for started, finished, outcome in rows:
        ws.conn.execute("INSERT INTO exec_runs (plan_id, mode, started_at, finished_at, outcome) VALUES (?, 'execute', ?, ?, ?)",
                        (plan_id, started, finished, outcome))
    runs = build_execution_report(ws, clock=CLOCK).runs
    assert [r.outcome for r in runs] == ["done", "interrupted", "killed", "refused", "killed", "finished"]
    assert [r.resumed for r in runs] == [False, True, True, False, True, False]
    assert runs[2].finished_at is None and "died" in runs[2].outcome_label
    html = render_report(build_execution_report(ws, clock=CLOCK))
    visible = html.split("<script")[0]
    assert visible.count("resumed by a later run") == 3 and "Runs of this plan" in visible


def test_jpy_has_no_decimals_on_the_demo_path(ws, tmp_path):
    from migrator.demo import sample_spec_path
    from migrator.plan import make_plan

    spec = tmp_path / "jpy.toml"
    text = sample_spec_path().read_text(encoding="utf-8")
    spec.write_text(text.replace('currency = "USD"', 'currency = "JPY"'), encoding="utf-8")
    make_plan(ws, spec, clock=lambda: 1_796_000_000 + 60)
    (cost,) = _pages(ws)[ACME].cost
    assert cost.currency == "JPY" and cost.estimated_cost == f"JPY {cost.sends * 2:,}"
    assert "." not in cost.estimated_cost and re.fullmatch(r"JPY [\d,]+", cost.budget_total)


def test_the_execution_report_counts_equal_a_count_of_the_ledger_itself(ws):
    """The report reads the ledger's counters (exec_send_counts); every figure must equal grouping
    exec_sends itself, per campaign, per batch and in total, after the demo's cutover (sent, failed,
    delivered, read) and after rows change state, are re-planned and deleted."""
    conn = ws.conn
    plan_id = conn.execute("SELECT plan_id FROM exec_plans").fetchone()[0]
    conn.execute("UPDATE exec_sends SET state = 'unknown' WHERE plan_id = ? AND send_id % 7 = 0", (plan_id,))
    conn.execute("UPDATE exec_sends SET state = 'skipped', reason = 'opted_out_during_run' WHERE plan_id = ?"
                 " AND send_id % 11 = 0", (plan_id,))
    conn.execute("DELETE FROM exec_sends WHERE plan_id = ? AND send_id % 13 = 0", (plan_id,))
    conn.commit()

    def truth(group):
        return {r[0]: tuple(r[1:]) for r in conn.execute(
            f"SELECT {group}, COUNT(*), SUM(state = 'sent'), SUM(state = 'skipped'), SUM(state = 'failed'),"
            " SUM(state IN ('unknown', 'in_flight')), SUM(delivered_at IS NOT NULL), SUM(read_at IS NOT NULL)"
            f" FROM exec_sends WHERE plan_id = ? GROUP BY {group}", (plan_id,))}

    r = build_execution_report(ws, plan=plan_id, clock=CLOCK)

    def got(c):
        return (c.planned, c.sent, c.skipped, c.failed, c.unknown, c.delivered, c.read)

    assert {c.campaign_key: got(c.counts) for c in r.campaigns if c.campaign_key in truth("campaign_key")} \
        == truth("campaign_key")
    assert {b.batch: got(b.counts) for b in r.batches if b.batch in truth("batch")} == truth("batch")
    assert got(r.totals) == truth("plan_id")[plan_id]
    assert truth("plan_id")[plan_id][1] > 0 and truth("plan_id")[plan_id][5] > 0     # sends and deliveries counted

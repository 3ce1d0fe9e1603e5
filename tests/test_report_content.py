"""What the reports say: verdicts, findings, regions, content side by side, deadlines, actions, cost."""

from __future__ import annotations

from datetime import date

import pytest
from _report import CLOCK, build_estate

from migrator.report import (build_audit_report, build_execution_report, build_readiness_report, render_report)
from migrator.report.common import money


@pytest.fixture
def estate(ws, tmp_path):
    audit, plan = build_estate(ws, tmp_path / "in")
    return ws, audit, plan


def test_audit_report_totals_findings_regions_content_and_timeline(estate):
    ws, audit, plan = estate
    r = build_audit_report(ws, clock=CLOCK)
    assert {v.verdict: v.tokens for v in r.verdicts} == audit.verdicts
    assert r.tokens == audit.tokens and r.pages == audit.pages
    counted = {f.code: f.count for f in r.findings}
    assert counted == audit.findings
    assert all(f.explanation and f.remedy for f in r.findings)
    assert any(f.sources for f in r.findings if f.count)
    # explicit countries from the CSV, inferred ones from time zones (P2's tokens have no country)
    us = next(x for x in r.regions if x.country == "US")
    assert us.explicit >= 6 and us.inferred == 3
    # every content row: RN message and MM result, every change/problem listed
    assert r.contents_total == 3 and len(r.content_rows) == 3
    assert r.content_rows[0].outcome == "unsupported"  # problems first
    by_page = {c.page_id: c for c in r.content_rows}
    assert by_page["P2"].outcome == "needs_edit" and by_page["P2"].problems
    assert by_page["P1"].mm_message and "Hello" in by_page["P1"].rn_message
    # timeline of rule dates relative to the as-of date
    cut = next(t for t in r.timeline if t.name == "rn_discontinuation")
    assert cut.date == "2026-02-10" and cut.days_from_as_of == 26
    assert [t.date for t in r.timeline] == sorted(t.date for t in r.timeline)
    p = r.provenance
    assert p.as_of == "2026-01-15" and p.rules_version and p.plan_id == plan.plan_id
    assert p.plan_fingerprint == plan.fingerprint and p.generated_at == "2026-01-15T00:00:00Z"
    html = render_report(r)
    assert "an inference, not a fact" in html and "as of 2026-01-15" in html


def test_readiness_verdicts_deadlines_actions_and_cost(estate):
    ws, audit, plan = estate
    r = build_readiness_report(ws, clock=CLOCK)
    pages = {p.page_id: p for p in r.pages}
    assert [p.status for p in r.pages] == sorted((p.status for p in r.pages),
                                                 key={"blocked": 0, "needs_action": 1, "ready": 2, "done": 3}.get)
    p1, p2, p3 = pages["P1"], pages["P2"], pages["P3"]
    assert p1.status == "ready" and p1.days_to_deadline == 26 and p1.deadline == "2026-02-10"
    assert p1.subscribers.move == 5 and p1.subscribers.opted_out == 1 and p1.subscribers.stay == 1
    assert [(a.who, a.code, a.count) for a in p1.actions] == [("partner", "RN_DISCONTINUATION_COUNTDOWN", 5)]
    # German business: its US subscribers have RN only until it stops for them, so they
    # count as lost at that date (issue 16.2), not as staying
    assert p2.subscribers.lost == 3 and p2.subscribers.move == 0 and p2.subscribers.stay == 0
    assert p2.status == "blocked" and p2.deadline == "2026-02-10"
    assert ("business", "PAGE_BUSINESS_COUNTRY_UNSUPPORTED") in [(a.who, a.code) for a in p2.actions]
    whos = {a.code: a.who for a in p3.actions}
    assert whos["PAGE_NO_AD_ACCOUNT"] == "business" and whos["REVIEW_TOKENS"] == "partner"
    # cost from the plan, per currency, only where the plan sends
    assert [(c.currency, c.sends, c.estimated_cost_minor, c.estimated_cost) for c in p1.cost] == \
        [("USD", 5, 10, "USD 0.10")]
    assert p2.cost == [] and p3.cost == []
    assert r.subscribers.total == audit.tokens
    assert r.statuses == {**audit.pages, "done": 0}      # nothing sent yet: no page is done
    html = render_report(r)
    assert "26 days" in html and "Who acts" in html and "Recurring Notifications: " in html


def test_readiness_after_the_cutoff_counts_days_since(ws, tmp_path):
    build_estate(ws, tmp_path / "in", with_plan=False, as_of=date(2026, 3, 1))
    r = build_readiness_report(ws, page="P1", clock=CLOCK)
    (p,) = r.pages
    assert p.days_to_deadline == -19 and "19 days ago" in p.deadline_label
    assert p.cost == [] and r.provenance.plan_id is None
    assert "no plan yet" in render_report(r)


def test_execution_report_from_the_plan_alone(estate):
    ws, audit, plan = estate
    r = build_execution_report(ws, clock=CLOCK)
    assert r.plan_id == plan.plan_id and r.totals.planned == plan.sends
    if not r.ledger:
        assert r.totals.sent is None and r.ledger_note
        assert any("migrator execute PLAN.json" in s for s in r.next_steps)
    assert sum(c.counts.planned for c in r.campaigns) == plan.sends
    assert sum(b.counts.planned for b in r.batches) == plan.sends
    assert sum(p.planned for p in r.throughput) == plan.sends
    assert r.excluded == plan.excluded
    c = r.campaigns[0]
    assert c.estimated_cost == money(c.estimated_cost_minor, c.currency)


@pytest.mark.parametrize("minor, cur, text", [(12345, "usd", "USD 123.45"), (5000, "JPY", "JPY 5,000"),
                                              (1234, "IDR", "IDR 1,234"), (None, "USD", None)])
def test_money(minor, cur, text):
    assert money(minor, cur) == text


def test_a_plan_from_an_older_audit_is_flagged(estate):
    from migrator.audit import run_audit

    ws, audit, plan = estate
    assert build_readiness_report(ws, clock=CLOCK).provenance.plan_note is None
    run_audit(ws, as_of=date(2026, 1, 20), clock=CLOCK)
    r = build_readiness_report(ws, clock=CLOCK)
    assert r.provenance.plan_id == plan.plan_id
    assert "not from the latest audit" in r.provenance.plan_note
    assert "re-run `migrator plan`" in render_report(r)
    assert build_execution_report(ws, clock=CLOCK).provenance.plan_note == r.provenance.plan_note

"""Before RN's discontinuation every report leads with what is lost on that date if nothing is
done: per page, in subscriptions and in the value the plan spec states per subscriber."""

from __future__ import annotations

from datetime import date

import pytest
from _report import CLOCK, SPEC, build_estate

from migrator.report import build_audit_report, build_execution_report, build_readiness_report, render_report

VALUE = SPEC.replace('name = "report test"', 'name = "report test"\nvalue_per_subscriber = { amount = 150, currency = "USD" }')


@pytest.fixture
def valued(ws, tmp_path):
    build_estate(ws, tmp_path / "in", spec=VALUE)
    return ws


def test_readiness_countdown_per_page_in_subscribers_and_value(valued):
    r = build_readiness_report(valued, clock=CLOCK)
    cd = r.countdown
    assert cd.deadline == "2026-02-10" and cd.days_left == 26
    by = {p.page_id: p for p in cd.pages}
    # P1: 5 still to move; P2: 3 with RN only until it stops and no MM (German business: lost on the
    # date, issue 16.2); P3: 1 to move (+1 undecided, counted apart)
    assert {k: v.subscribers for k, v in by.items()} == {"P1": 5, "P2": 3, "P3": 1}
    assert by["P2"].lost == 3 and by["P3"].to_move == 1 and by["P3"].undecided == 1
    assert cd.subscribers == 9 and [v.text for v in cd.value] == ["USD 13.50"]
    assert by["P1"].value.text == "USD 7.50" and by["P1"].value.basis == "value"
    pages = {p.page_id: p for p in r.pages}
    assert pages["P1"].loss.subscribers == 5
    html = render_report(r)
    # the countdown leads: before the summary, the cards and every table
    assert html.index('id="countdown"') < html.index('class="lead"') < html.index('class="cards"')
    assert "26 days left: on 2026-02-10, 9 subscriptions are lost if nothing is done (worth USD 13.50)" in html


def test_every_report_leads_with_it(valued):
    for build in (build_audit_report, build_execution_report):
        m = build(valued, clock=CLOCK)
        assert m.countdown is not None and m.countdown.subscribers == 9
        html = render_report(m)
        main = html.index("<main>")
        assert html.index('id="countdown"', main) < html.index("<h2", html.index('id="countdown"', main) + 40)
        assert html.index('id="countdown"') < html.index('class="lead"')


def test_no_value_says_how_to_state_one_and_no_countdown_after_the_date(ws, tmp_path):
    build_estate(ws, tmp_path / "in")
    cd = build_readiness_report(ws, clock=CLOCK).countdown
    assert cd.value == [] and "value_per_subscriber" in cd.value_note and cd.subscribers == 9


def test_after_the_date_there_is_no_countdown(ws, tmp_path):
    build_estate(ws, tmp_path / "in", as_of=date(2026, 3, 1), with_plan=False)
    r = build_readiness_report(ws, clock=CLOCK)
    assert r.countdown is None and 'id="countdown"' not in render_report(r)


def test_the_value_does_not_change_the_plan(ws, tmp_path):
    from migrator.plan.spec import spec_from_dict

    a = spec_from_dict({"name": "x"})
    b = spec_from_dict({"name": "x", "value_per_subscriber": {"amount": 1, "currency": "USD"}})
    assert a.canonical_json() == b.canonical_json()


def test_a_business_file_leads_with_its_own_loss(valued, tmp_path):
    from migrator.report.per_page import write_per_page

    res = write_per_page(valued, tmp_path / "pp", clock=CLOCK)
    html = res.files["P1"].read_text(encoding="utf-8")
    visible = html.split("<script")[0]
    assert visible.index('id="countdown"') < visible.index('class="lead"')
    assert "5 subscriptions are lost if nothing is done (worth USD 7.50)" in visible
    assert "Kaufhaus" not in html and "No Account" not in html       # the other pages' losses are not there

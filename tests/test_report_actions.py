"""Readiness actions follow the plan and the ledger, not only the audit (issue 17, review gaps):
an ad account supplied by the plan spec clears "Give the partner an ad account"; blocked pages
are not asked to approve MM text that can never be sent, nor done pages text already sent; a
business file explains in business words why a message cannot go to MM (the converter's JSON
paths and error codes stay in the partner's reports)."""

from __future__ import annotations

import re

from _report import CLOCK as ESTATE_CLOCK
from _report import build_estate
from _demo import CLOCK, demo, readiness_pages, ws  # noqa: F401  (fixtures)
from test_report_cutover import check_actions

from migrator.convert import PROBLEM_CODES
from migrator.report import build_readiness_report, render_report
from migrator.report.approvals import PLAIN, plain
from migrator.report.per_page import write_per_page
from migrator.store import open_workspace

MERCADO = "580005696882910"     # pages.csv gives it no ad account; plans/sample.toml does
BLOCKED = {"DE", "GB", "JP", "CA"}
INTERNALS = re.compile(r"\bmessage\.[a-z]|payload|elements\[|attachment_id|\b2300\d{3}\b|mm_[a-z_]+_max|Facebook-hosted|"
                       r"code points|UTF-16|macros?\b")


_pages = readiness_pages


def test_an_ad_account_from_the_plan_spec_clears_the_no_ad_account_action(ws):
    p = _pages(ws)[MERCADO]
    assert "PAGE_NO_AD_ACCOUNT" in p.reasons              # the audit reads the pages file, which has none
    assert p.cutover.sent > 0 and not any(a.code == "PAGE_NO_AD_ACCOUNT" for a in p.actions)
    # before any send went out the page still has people to move: the account is still not asked for
    ws.conn.execute("UPDATE exec_sends SET state = 'planned', sent_at = NULL, delivered_at = NULL, read_at = NULL"
                    " WHERE token_id IN (SELECT id FROM tokens WHERE page_id = ?)", (MERCADO,))
    p = _pages(ws)[MERCADO]
    assert p.subscribers.move > 0 and p.cutover.state == "not_started"
    assert not any(a.code == "PAGE_NO_AD_ACCOUNT" for a in p.actions)
    assert "ad account" not in render_report(build_readiness_report(ws, page=MERCADO, clock=CLOCK)).split(
        "<script")[0].split('id="glossary"')[0].lower()


def test_a_page_without_any_ad_account_is_still_asked_for_one_with_its_rows_count(tmp_path):
    ws = open_workspace(tmp_path / "e.db")
    build_estate(ws, tmp_path / "in")
    r = build_readiness_report(ws, clock=ESTATE_CLOCK)
    p3 = next(p for p in r.pages if p.page_id == "P3")
    ask = [a for a in p3.actions if a.code == "PAGE_NO_AD_ACCOUNT"]
    assert ask and ask[0].count == p3.subscribers.move > 0 and ask[0].counts == "move"
    seen = check_actions(r)                                # every action of this estate is tied to its row too
    assert {"PAGE_NO_AD_ACCOUNT", "PAGE_BUSINESS_COUNTRY_UNSUPPORTED"} <= seen, seen
    ws.close()


def test_blocked_pages_are_not_asked_to_approve_mm_text_and_done_pages_not_text_already_sent(ws):
    pages = _pages(ws)
    blocked = [p for p in pages.values() if p.business_country in BLOCKED]
    assert len(blocked) == 4
    for p in blocked:
        assert p.status == "blocked" and "PAGE_CONTENT_NEEDS_WORK" in p.reasons   # the audit found such text
        assert p.approvals == [] and p.approvals_total == 0
        assert not any(a.code == "PAGE_CONTENT_NEEDS_WORK" for a in p.actions)
        assert p.approvals_note and p.business_country in p.approvals_note
    done = [p for p in pages.values() if p.status == "done"]
    assert done
    for p in done:
        assert p.approvals == [] and not any(a.code == "PAGE_CONTENT_NEEDS_WORK" for a in p.actions)
    # a page with people still to move keeps its list, less the messages whose replacement already went out
    assert any(p.approvals and p.subscribers.move for p in pages.values())
    for p in pages.values():
        if p.cutover and p.cutover.sent:
            assert not any("sends this instead" in m.plan for m in p.approvals), (p.name, p.approvals)
    html = render_report(build_readiness_report(ws, page=blocked[0].page_id, clock=CLOCK))
    assert "to approve or replace" not in html and "No message needs approving" in html


def test_every_converter_problem_has_a_business_sentence():
    assert set(PROBLEM_CODES) <= set(PLAIN)
    for code in PROBLEM_CODES:
        assert not INTERNALS.search(plain(code, "")), code
    # numbers are kept where the converter gives them
    assert plain("TEXT_TOO_LONG", "message.text is 900 characters (code points or UTF-16 units, the larger); "
                                  "MM allows 640") == "The text is 900 characters long; Marketing Messages allow 640."
    assert "cdn.example.com" in plain("MEDIA_URL_NOT_FACEBOOK", "message.attachment.payload.elements[0].url is not "
                                      "Facebook-hosted: 'https://cdn.example.com/x.jpg'; upload it")
    assert plain("NO_SUCH_CODE", "message.x is wrong") == "Part of this message cannot be sent on Marketing Messages as it is."


def test_business_files_say_why_in_business_words_and_the_partner_keeps_the_detail(ws, tmp_path):
    full = build_readiness_report(ws, clock=CLOCK)
    asked = [p for p in full.pages if p.approvals]
    assert asked
    for p in asked:
        for m in p.approvals:
            assert m.why and not any(INTERNALS.search(w) for w in m.why), m.why
            assert m.detail                                  # the partner's report keeps the converter's words
    assert "elements[0]" in render_report(full)
    files = write_per_page(ws, tmp_path / "pp", clock=CLOCK).files
    for pid, path in files.items():
        text = path.read_text(encoding="utf-8")
        assert not INTERNALS.search(text), (pid, INTERNALS.search(text).group(0))


def test_each_actions_figure_is_shown_in_its_pages_row(ws):
    """The subsets an action counts (daily, expired, contradicted) are figures the page's own row shows."""
    full = build_readiness_report(ws, clock=CLOCK)
    daily = [p for p in full.pages if p.subscribers.daily_limited]
    assert daily
    for p in daily:
        html = render_report(build_readiness_report(ws, page=p.page_id, clock=CLOCK)).split("<script")[0]
        assert f"{p.subscribers.daily_limited:,} of them daily before" in html
        a = next(a for a in p.actions if a.code == "RN_DAILY_FREQUENCY_LOST")
        assert a.count == p.subscribers.daily_limited and a.counts == "daily_limited"

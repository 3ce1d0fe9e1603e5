"""The circuit breaker (execute/breaker.py): a burst of 2300004 on one page is a setup fault, not a dead estate."""

from __future__ import annotations

import pytest

from migrator.audit import findings as F
from migrator.audit import run_audit
from migrator.emulator import load_subscribers_workspace
from migrator.execute.breaker import PageBreaker, Thresholds
from migrator.execute.outcomes import decide
from migrator.errors import RulesError
from migrator.graph import error_from_envelope
from migrator.plan import write_plan
from migrator.rules import load_rules
from _exec import Emu
from _plan import AS_OF, estate, lib, plan, tok

PAGES = [["P1", "Shop One", "US", "111", "USD"], ["P2", "Shop Two", "US", "111", "USD"]]
CONTENT = [lib("P1", "deals", "Deals", {"text": "Deals!"}), lib("P2", "deals2", "Deals", {"text": "More deals!"})]


def two_pages(ws, tmp, n=60):
    estate(ws, tmp / "in", [tok(i) for i in range(n)] + [tok(1000 + i, page="P2") for i in range(n)],
           pages=PAGES, content=CONTENT)
    p = plan(ws, tmp / "spec")
    write_plan(p, tmp / "plan.json")
    return p


def by_page(ws, plan_id):
    out: dict[tuple[str, str, str | None], int] = {}
    for page, state, reason, n in ws.conn.execute(
            "SELECT t.page_id, e.state, e.reason, COUNT(*) FROM exec_sends e JOIN tokens t ON t.id = e.token_id "
            "WHERE e.plan_id = ? GROUP BY 1, 2, 3", (plan_id,)):
        out[(page, state, reason)] = n
    return out


def feedback(ws):
    return dict(ws.conn.execute("SELECT state, COUNT(*) FROM mm_feedback GROUP BY state"))


def test_a_burst_of_2300004_on_one_page_trips_the_breaker_and_marks_nothing(ws, tmp_path):
    p = two_pages(ws, tmp_path)
    subs = [s for s in load_subscribers_workspace(ws).subscribers if s.page_id != "P2"]  # P2: no permission
    emu = Emu(ws, subscribers=subs)
    s = emu.run(ws, p)
    assert s.outcome == "stopped" and len(s.breaker) == 1
    trip = s.breaker[0]
    assert (trip["page_id"], trip["code"]) == ("P2", 2300004) and trip["refusals"] >= 20
    assert "permission" in s.error and "pages_messaging" in s.hint
    rows = by_page(ws, p.plan_id)
    assert rows[("P1", "sent", None)] == 60
    # nothing of P2 failed or was marked: its sends stay planned for the same command after the fix
    assert sum(n for (page, state, _), n in rows.items() if page == "P2" and state != "planned") == 0
    assert ws.conn.execute("SELECT COUNT(*) FROM tokens WHERE mm_state IS NOT NULL").fetchone()[0] == 0
    assert feedback(ws) == {"suspect": trip["refusals"]}    # what it counted stays suspect, nothing invalid
    # the fix: the page's tokens can be loaded again; the same plan resumes and confirms the tokens
    for sub in load_subscribers_workspace(ws).subscribers:
        emu.emulator.state.subscribers.setdefault(sub.token, sub)
    s = emu.run(ws, p)
    assert s.outcome == "done" and s.sent == 60 and s.breaker == []
    assert feedback(ws) == {}                    # a success clears its token's suspect mark


def test_isolated_2300004_among_successes_are_recorded_per_recipient(ws, tmp_path):
    p = two_pages(ws, tmp_path)
    emu = Emu(ws)
    gone = [f"TOKEN{i:06d}SECRET" for i in (10, 30, 50, 1020)]
    for t in gone:
        del emu.emulator.state.subscribers[t]
    s = emu.run(ws, p)
    assert s.outcome == "done" and s.breaker == [] and s.sent == 116
    assert s.reasons == {"failed:recipient_never:invalid": 4}
    # what Meta said lives in mm_feedback; the executor never writes the inventory (tokens)
    assert ws.conn.execute("SELECT COUNT(*) FROM tokens WHERE mm_state IS NOT NULL").fetchone()[0] == 0
    marks = dict(ws.conn.execute("SELECT t.token, f.state FROM mm_feedback f JOIN tokens t ON t.id = f.token_id"))
    assert marks == {t: "invalid" for t in gone}
    assert feedback(ws) == {"invalid": 4}


def test_2300005_becomes_a_page_mismatch_finding_not_an_invalid_token(ws, tmp_path):
    p = two_pages(ws, tmp_path, 30)
    emu = Emu(ws)
    for i in (3, 7):
        emu.emulator.state.subscribers[f"TOKEN{i:06d}SECRET"].page_id = "P9"     # Meta: another page's token
    s = emu.run(ws, p)
    assert s.outcome == "done" and s.reasons == {"failed:recipient_never:page_mismatch": 2}
    assert ws.conn.execute("SELECT COUNT(*) FROM tokens WHERE mm_state IS NOT NULL").fetchone()[0] == 0
    assert feedback(ws) == {"page_mismatch": 2}
    run_audit(ws, as_of=AS_OF)                 # the next audit reads what the run learned
    got = ws.conn.execute("SELECT t.token, a.verdict, a.detail, a.flags FROM audit_tokens a JOIN tokens t "
                          "ON t.id = a.token_id WHERE a.flags & ? != 0", (F.mask("TOKEN_PAGE_MISMATCH"),)).fetchall()
    assert sorted(g[0] for g in got) == ["TOKEN000003SECRET", "TOKEN000007SECRET"]
    assert all(v == "review" and "P1" in d and "2300005" in d for _, v, d, _ in got)
    cat = {r[0]: r for r in ws.conn.execute("SELECT code, remedy, sources, count FROM audit_run_findings")}
    assert cat["TOKEN_PAGE_MISMATCH"][3] == 2 and "api-reference" in cat["TOKEN_PAGE_MISMATCH"][2]


def test_2300004_never_marks_a_token_on_its_own():
    for body in ({"code": 2300004, "message": "could not be loaded"}, {"code": 100, "error_subcode": 2300004},
                 {"code": 2300005, "message": "belongs to another page"}):
        v = decide(error_from_envelope({"error": body}), attempts=1, warmup_codes=frozenset(), campaign_age=1e6,
                   warmup_limit=1.0)
        assert (v.kind, v.state, v.mm_state) == ("suspect", "failed", None)


def test_the_sliding_window_trips_on_a_fault_that_starts_mid_run():
    th = Thresholds(frozenset({2300004}))
    b = PageBreaker(th)
    for t in range(500):                         # a healthy start, with 2 % per-recipient refusals
        assert b.observe("P", t, 2300004 if t % 50 == 0 else None) is None
    trip = None
    for t in range(500, 700):                    # then the permission goes: 60 % refused
        trip = trip or b.observe("P", t, 2300004 if t % 5 < 3 else None)
    assert trip is not None and trip.rule == "the last" and trip.attempts == 200
    b2 = PageBreaker(th)
    for t in range(2000):                        # 25 %: under the 30 % threshold, never trips
        assert b2.observe("P", t, 2300004 if t % 4 == 0 else None) is None
    b3 = PageBreaker(th)
    for t in range(5):                           # one token refused again and again counts once
        assert b3.observe("P", 1, 2300004) is None


def test_the_thresholds_come_from_the_rules(ws, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text("breaker_early_refusals = 5\nbreaker_early_attempts = 10\n")
    p = two_pages(ws, tmp_path, 12)
    subs = [s for s in load_subscribers_workspace(ws).subscribers if s.page_id != "P2"]
    emu = Emu(ws, subscribers=subs)
    s = emu.run(ws, p, rules=load_rules(rules), concurrency=1)
    assert [(t["page_id"], t["refusals"], t["attempts"]) for t in s.breaker] == [("P2", 5, 5)]
    bad = tmp_path / "bad.toml"
    bad.write_text("breaker_window_percent = 0\n")
    with pytest.raises(RulesError, match="percentage"):
        load_rules(bad)

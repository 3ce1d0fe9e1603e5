"""Audit verdicts and findings per rule, as-of boundaries, options, duplicates, pages, content."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from migrator.audit import run_audit
from migrator.audit import latest_run
from migrator.audit.engine import today_utc
from migrator.audit.findings import decode
from migrator.rules import load_rules

AFTER = date(2026, 3, 1)      # after every cut-off
BEFORE_CUT = date(2026, 1, 15)  # MM live, RN still works everywhere


def page(ws, page_id="P", business_country="US", ad_account_id="123"):
    ws.db["pages"].insert({"page_id": page_id, "business_country": business_country,
                           "ad_account_id": ad_account_id, "currency": "USD"}, replace=True)


def token(ws, tok, page_id="P", **cols):
    """A token row; `mm_state` is what Meta told the executor, kept in mm_feedback (not tokens)."""
    feedback = cols.pop("mm_state", None)
    row = {"token": tok, "token_hash": tok[:12], "page_id": page_id, "psid": cols.pop("psid", tok),
           "status": "active"}
    row.update(cols)
    token_id = ws.db["tokens"].insert(row).last_pk
    if feedback:
        ws.db["mm_feedback"].insert({"token_id": token_id, "state": feedback, "seen_at": 1})


def audit(ws, as_of=AFTER, rules=None):
    return run_audit(ws, as_of=as_of, rules=rules)


def get(ws, tok):
    r = next(ws.db.query(
        "SELECT a.* FROM audit_tokens a JOIN tokens t ON t.id = a.token_id WHERE t.token = ?", [tok]))
    r["codes"] = set(decode(r["flags"]))
    return r


def ts(d: str) -> int:
    return int(datetime.fromisoformat(d).replace(tzinfo=timezone.utc).timestamp())


def verdict_on(ws, day, tok, rules=None):
    audit(ws, date.fromisoformat(day) if isinstance(day, str) else day, rules)
    return get(ws, tok)


# --- the five verdicts -------------------------------------------------------------------

def test_migrate_us_recipient_on_us_business(ws):
    page(ws)
    token(ws, "t1", timezone="America/New_York")
    r = verdict_on(ws, AFTER, "t1")
    assert (r["verdict"], r["certain"], r["region"], r["region_source"]) == ("migrate", 1, "US", "timezone")
    assert {"MM_CADENCE_12H", "REGION_INFERRED", "RN_DISCONTINUED"} <= r["codes"]


def test_stay_on_rn_for_excluded_recipient(ws):
    page(ws)
    token(ws, "t1", country="DE", timezone="America/New_York")
    r = verdict_on(ws, AFTER, "t1")
    assert (r["verdict"], r["region"], r["region_source"]) == ("stay_on_rn", "DE", "explicit")
    assert {"RECIPIENT_EXCLUDED_FROM_MM", "RN_CADENCE_48H"} <= r["codes"]
    assert "REGION_INFERRED" not in r["codes"]


def test_blocked_when_business_cannot_use_mm_and_rn_is_gone(ws):
    page(ws, business_country="FR")
    token(ws, "t1", timezone="America/Sao_Paulo")
    r = verdict_on(ws, AFTER, "t1")
    assert r["verdict"] == "blocked"
    assert {"BUSINESS_COUNTRY_UNSUPPORTED", "RN_DISCONTINUED"} <= r["codes"]


@pytest.mark.parametrize("cols", [{"status": "stopped"}, {"mm_state": "opted_out"}])
def test_opted_out(ws, cols):
    page(ws)
    token(ws, "t1", timezone="America/New_York", **cols)
    r = verdict_on(ws, AFTER, "t1")
    assert r["verdict"] == "opted_out" and r["codes"] == {"OPTED_OUT"}


def test_review_when_region_unknown(ws):
    page(ws)
    token(ws, "t1", timezone="UTC")
    r = verdict_on(ws, AFTER, "t1")
    assert (r["verdict"], r["certain"], r["region_source"], r["candidates"]) == ("review", 0, "unknown", None)
    assert "REGION_UNKNOWN" in r["codes"]
    assert "migrate" in r["detail"] and "stay_on_rn" in r["detail"]


# --- ambiguous and agreeing zones ------------------------------------------------------------

def test_zone_names_its_own_country_not_its_clock_group(ws):
    page(ws)
    token(ws, "gb", timezone="Europe/Belfast")   # legacy alias of Europe/London: GB
    token(ws, "je", timezone="Europe/Jersey")    # zone.tab lists Jersey itself: JE
    audit(ws)
    gb, je = get(ws, "gb"), get(ws, "je")
    assert (gb["verdict"], gb["certain"], gb["candidates"]) == ("stay_on_rn", 1, "GB")
    assert (je["verdict"], je["certain"], je["candidates"]) == ("migrate", 1, "JE")
    assert "REGION_AMBIGUOUS" not in gb["codes"] | je["codes"]
    assert "REGION_INFERRED" in gb["codes"]


def test_europe_berlin_is_germany_and_oslo_is_norway(ws):
    page(ws)
    token(ws, "de", timezone="Europe/Berlin")
    token(ws, "no", timezone="Europe/Oslo")
    audit(ws)
    de, no = get(ws, "de"), get(ws, "no")
    assert (de["verdict"], de["region"]) == ("stay_on_rn", "DE")
    assert (no["verdict"], no["region"]) == ("migrate", "NO")
    # the other countries on Berlin's clock are information, not ambiguity
    assert "DK, NO, SE, SJ" in de["detail"] and "information" in de["detail"]


def test_zone_links_give_a_certain_verdict(ws):
    page(ws)
    token(ws, "jp", timezone="Japan")              # -> Asia/Tokyo: JP
    token(ws, "ca", timezone="America/Montreal")   # -> America/Toronto: CA
    audit(ws)
    jp, ca = get(ws, "jp"), get(ws, "ca")
    assert (jp["verdict"], jp["certain"], jp["candidates"]) == ("stay_on_rn", 1, "JP")
    assert (ca["verdict"], ca["certain"], ca["candidates"]) == ("migrate", 1, "CA")
    assert "REGION_AMBIGUOUS" not in jp["codes"] | ca["codes"]
    assert "RECIPIENT_EXCLUDED_FROM_MM" in jp["codes"]


def test_link_zone_resolves_like_its_target(ws):
    page(ws)
    token(ws, "t1", timezone="Asia/Calcutta")
    r = verdict_on(ws, AFTER, "t1")
    assert (r["verdict"], r["region"]) == ("migrate", "IN")


# --- as-of boundaries: the day before and the day of each date ------------------------------

def test_rn_discontinuation_boundary(ws):
    page(ws, business_country="FR")  # MM closed to this business: RN is the only path
    token(ws, "t1", timezone="America/New_York")
    # issue 16.2: the only path ends on 2026-02-10, so the subscriber is blocked on both sides
    # of the date; before it the finding gives the date RN stops (not "migrate before")
    before = verdict_on(ws, "2026-02-09", "t1")
    assert before["verdict"] == "blocked"
    assert "RN_ONLY_UNTIL_CUTOFF" in before["codes"]
    assert "RN_DISCONTINUATION_COUNTDOWN" not in before["codes"]
    assert latest_run(ws).summary["rn_discontinuation_countdown_days"] == 1
    day_of = verdict_on(ws, "2026-02-10", "t1")
    assert day_of["verdict"] == "blocked" and "RN_DISCONTINUED" in day_of["codes"]
    assert "RN_ONLY_UNTIL_CUTOFF" not in day_of["codes"]
    assert latest_run(ws).summary["rn_discontinuation_countdown_days"] is None


def test_blocked_before_the_cutoff_names_the_date_and_counts_as_lost(ws):
    page(ws, business_country="DE")  # the example: US subscriber, DE business
    token(ws, "us", timezone="America/New_York")
    token(ws, "es", timezone="Europe/Madrid")   # exempt: stays on RN for good
    audit(ws, BEFORE_CUT)
    us = get(ws, "us")
    assert us["verdict"] == "blocked" and "RN_ONLY_UNTIL_CUTOFF" in us["codes"]
    run = next(ws.db.query("SELECT explanation, remedy FROM audit_run_findings"
                           " WHERE code = 'RN_ONLY_UNTIL_CUTOFF' ORDER BY run_id DESC LIMIT 1"))
    assert "2026-02-10" in run["explanation"] and "Migrate before" not in run["remedy"]
    assert get(ws, "es")["verdict"] == "stay_on_rn"
    from migrator.report.build_readiness import build_readiness_report
    rep = build_readiness_report(ws)
    assert rep.subscribers.lost == 1 and rep.subscribers.stay == 1
    assert rep.deadline == "2026-02-10"


def test_on_2026_01_15_rn_still_works_everywhere_with_a_countdown(ws):
    page(ws)
    token(ws, "us", timezone="America/New_York")
    token(ws, "es", timezone="Europe/Madrid")
    result = audit(ws, BEFORE_CUT)
    assert get(ws, "us")["verdict"] == "migrate"
    assert "RN_DISCONTINUATION_COUNTDOWN" in get(ws, "us")["codes"]
    assert "RN_DISCONTINUATION_COUNTDOWN" not in get(ws, "es")["codes"]  # exempt geo
    assert result.countdown_days == 26


def test_announced_deprecation_is_recorded_not_enforced(ws):
    page(ws, business_country="FR")
    token(ws, "t1", timezone="America/New_York")
    for day in ("2026-01-11", "2026-01-12"):
        r = verdict_on(ws, day, "t1")
        assert r["verdict"] == "blocked" and "RN_ONLY_UNTIL_CUTOFF" in r["codes"]
        assert "RN_DISCONTINUED" not in r["codes"]


def test_mm_launch_boundary(ws):
    page(ws)
    token(ws, "t1", timezone="America/New_York")
    # the lasting path is MM from its launch on: the verdict says so on both sides of the date
    before = verdict_on(ws, "2025-06-30", "t1")
    assert before["verdict"] == "migrate" and "MM_NOT_LAUNCHED" in before["codes"]
    day_of = verdict_on(ws, "2025-07-01", "t1")
    assert day_of["verdict"] == "migrate" and "MM_NOT_LAUNCHED" not in day_of["codes"]


def test_rn_cadence_change_is_a_finding_on_both_sides_of_its_date(ws):
    page(ws, business_country="FR")
    token(ws, "t1", timezone="Europe/Madrid")
    assert "RN_CADENCE_48H" not in verdict_on(ws, "2025-08-31", "t1")["codes"]
    assert "RN_CADENCE_48H" in verdict_on(ws, "2025-09-01", "t1")["codes"]


def test_rn_cadence_change_boundary_and_daily_frequency(ws):
    page(ws)
    token(ws, "daily", timezone="Europe/Madrid", frequency="DAILY")
    token(ws, "weekly", timezone="Europe/Madrid", frequency="WEEKLY")
    before = verdict_on(ws, "2025-08-31", "daily")
    assert before["verdict"] == "stay_on_rn"
    assert not {"RN_CADENCE_48H", "RN_DAILY_FREQUENCY_LOST"} & before["codes"]
    day_of = verdict_on(ws, "2025-09-01", "daily")
    assert {"RN_CADENCE_48H", "RN_DAILY_FREQUENCY_LOST"} <= day_of["codes"]
    weekly = get(ws, "weekly")
    assert "RN_CADENCE_48H" in weekly["codes"] and "RN_DAILY_FREQUENCY_LOST" not in weekly["codes"]


def test_daily_frequency_only_matters_for_tokens_staying_on_rn(ws):
    page(ws)
    token(ws, "t1", timezone="America/New_York", frequency="DAILY")
    r = verdict_on(ws, AFTER, "t1")
    assert r["verdict"] == "migrate" and "RN_DAILY_FREQUENCY_LOST" not in r["codes"]


def test_legacy_expiry(ws):
    page(ws)
    token(ws, "old", timezone="America/New_York", token_expiry=ts("2023-03-01"))
    token(ws, "passed", timezone="America/New_York", token_expiry=ts("2025-12-01"))
    token(ws, "future", timezone="America/New_York", token_expiry=ts("2026-06-01"))
    audit(ws)
    old, passed, future = get(ws, "old"), get(ws, "passed"), get(ws, "future")
    # a passed expiry warns but does not decide: only Meta's refusal (mm_state) does
    assert old["verdict"] == "migrate" and "LEGACY_EXPIRY_PASSED" in old["codes"]
    assert passed["verdict"] == "migrate" and "LEGACY_EXPIRY_PASSED" in passed["codes"]
    assert future["verdict"] == "migrate" and "LEGACY_EXPIRY_PASSED" not in future["codes"]
    # expiry boundary: the day before the expiry it has not passed, on the day it has
    assert "LEGACY_EXPIRY_PASSED" not in verdict_on(ws, "2025-11-30", "passed")["codes"]
    assert "LEGACY_EXPIRY_PASSED" in verdict_on(ws, "2025-12-01", "passed")["codes"]


@pytest.mark.parametrize("state", ["expired", "invalid"])
def test_token_rejected_by_mm_is_blocked(ws, state):
    page(ws)
    token(ws, "t1", timezone="America/New_York", mm_state=state)
    r = verdict_on(ws, AFTER, "t1")
    assert r["verdict"] == "blocked" and "TOKEN_EXPIRED" in r["codes"]
    assert "MM_CADENCE_12H" not in r["codes"]


# --- region sources ------------------------------------------------------------------------

def test_mm_2300032_teaches_the_region(ws):
    page(ws)
    token(ws, "t1", timezone="America/New_York", mm_state="wrong_region")
    r = verdict_on(ws, AFTER, "t1")
    assert (r["verdict"], r["region_source"]) == ("stay_on_rn", "mm_error")
    assert "RECIPIENT_EXCLUDED_FROM_MM" in r["codes"]


def test_explicit_country_contradicted_by_mm_goes_to_review(ws):
    page(ws)
    token(ws, "t1", country="US", mm_state="wrong_region")
    r = verdict_on(ws, AFTER, "t1")
    assert r["verdict"] == "review" and "REGION_CONFLICT" in r["codes"]


# --- business country and ad account ---------------------------------------------------------

def test_unknown_business_country_gives_review_where_it_matters(ws):
    page(ws, business_country=None)
    token(ws, "us", timezone="America/New_York")
    token(ws, "jp", timezone="Asia/Tokyo")
    token(ws, "orphan", page_id="NOPAGE", timezone="America/New_York")
    audit(ws)
    us, jp, orphan = get(ws, "us"), get(ws, "jp"), get(ws, "orphan")
    assert us["verdict"] == "review" and "BUSINESS_COUNTRY_UNKNOWN" in us["codes"]
    # recipient basis: JP stays on RN whatever the business country
    assert jp["verdict"] == "stay_on_rn" and jp["certain"] == 1
    assert orphan["verdict"] == "review" and "BUSINESS_COUNTRY_UNKNOWN" in orphan["codes"]
    p = next(ws.db.query("SELECT * FROM audit_pages WHERE page_id = 'NOPAGE'"))
    assert "PAGE_NOT_INGESTED" in p["reasons"] and p["status"] == "needs_action"


def test_before_cutoff_unsupported_business_depends_on_the_region(ws):
    # RN works for everyone until the cut-off, but whether it lasts depends on the region
    page(ws, business_country="FR")
    token(ws, "t1", timezone="UTC")
    r = verdict_on(ws, BEFORE_CUT, "t1")
    assert (r["verdict"], r["certain"]) == ("review", 0)
    assert "REGION_UNKNOWN" in r["codes"]
    assert "blocked" in r["detail"] and "stay_on_rn" in r["detail"]


# --- interpretation options ----------------------------------------------------------------

def _rules(tmp_path, text):
    f = tmp_path / "o.toml"
    f.write_text(text)
    return load_rules(f)


def test_rn_exemption_by_business_geo(ws, tmp_path):
    page(ws, business_country="DE")  # not an MM country, but an RN-exempt geo
    token(ws, "t1", timezone="America/New_York")
    assert verdict_on(ws, AFTER, "t1")["verdict"] == "blocked"
    biz = _rules(tmp_path, 'rn_exemption_basis = "business"\n')
    assert verdict_on(ws, AFTER, "t1", biz)["verdict"] == "stay_on_rn"
    either = _rules(tmp_path, 'rn_exemption_basis = "either"\n')
    assert verdict_on(ws, AFTER, "t1", either)["verdict"] == "stay_on_rn"


def test_eu_as_eea_excludes_norway(ws, tmp_path):
    page(ws)
    token(ws, "t1", country="NO", timezone="Europe/Oslo")
    assert verdict_on(ws, AFTER, "t1")["verdict"] == "migrate"
    eea = _rules(tmp_path, 'eu_definition = "EEA"\n')
    r = verdict_on(ws, AFTER, "t1", eea)
    assert r["verdict"] == "stay_on_rn" and "RECIPIENT_EXCLUDED_FROM_MM" in r["codes"]


def test_cadence_option_is_rendered_in_the_finding(ws, tmp_path):
    page(ws)
    token(ws, "t1", timezone="America/New_York")
    result = audit(ws, AFTER, _rules(tmp_path, "mm_cadence_hours = 24\n"))
    text = next(c for c in result.catalogue if c["code"] == "MM_CADENCE_12H")["explanation"]
    assert "24 h" in text and result.options["mm_cadence_hours"] == 24


# --- duplicates, counts, pages, content, storage -----------------------------------------------

def test_duplicate_tokens_of_one_person_keep_one_primary(ws):
    page(ws)
    token(ws, "a", psid="person", timezone="America/New_York", status="stopped")
    token(ws, "b", psid="person", timezone="America/New_York")
    token(ws, "c", psid="person", timezone="America/New_York")
    token(ws, "other", psid="other", timezone="America/New_York")
    result = audit(ws)
    a, b, c = get(ws, "a"), get(ws, "b"), get(ws, "c")
    assert b["is_primary"] == 1 and "DUPLICATE_PERSON_TOKEN" not in b["codes"]
    assert a["is_primary"] == 0 and c["is_primary"] == 0
    assert "DUPLICATE_PERSON_TOKEN" in c["codes"]
    assert result.tokens == 4 and result.recipients == 2
    assert result.findings["DUPLICATE_PERSON_TOKEN"] == 2
    migrate = [r["token"] for r in ws.db.query("SELECT token FROM v_audit_migrate ORDER BY token")]
    assert migrate == ["b", "other"]


def test_the_best_verdict_then_the_oldest_token_is_primary_and_the_stored_digest_is_the_scans(ws):
    """Ranking: migrate < stay_on_rn < review < blocked < opted_out, then the lower id, whatever
    the insert order; the results digest stored from the counts equals a scan of the rows."""
    import json

    from migrator.audit.runs import results_sums

    page(ws)
    page(ws, "Q", business_country="FR")
    token(ws, "r1", psid="x", timezone="Not/AZone")            # review
    token(ws, "o1", psid="x", timezone="America/New_York", status="stopped")
    token(ws, "m1", psid="x", timezone="America/New_York")     # migrate, newest: still primary
    token(ws, "r2", psid="y", timezone="Not/AZone")
    token(ws, "r3", psid="y", timezone="Not/AZone")            # same verdict: the older r2 wins
    token(ws, "s1", "Q", psid="x", timezone="Asia/Tokyo")      # another page: another person
    token(ws, "lone", psid=None, timezone="Europe/Berlin")
    result = audit(ws)
    primary = {t: get(ws, t)["is_primary"] for t in ("r1", "o1", "m1", "r2", "r3", "s1", "lone")}
    assert primary == {"r1": 0, "o1": 0, "m1": 1, "r2": 1, "r3": 0, "s1": 1, "lone": 1}
    assert result.findings["DUPLICATE_PERSON_TOKEN"] == 3 and result.recipients == 4
    stored = ws.conn.execute("SELECT results_digest FROM audit_runs WHERE id = ?",
                             (result.run_id,)).fetchone()[0]
    assert json.loads(stored) == json.loads(json.dumps(results_sums(ws.conn, result.run_id)))


def test_page_rollup(ws):
    page(ws, "READY")
    page(ws, "NOADS", ad_account_id=None)
    page(ws, "FR", business_country="FR")
    page(ws, "EUONLY", business_country="FR")
    token(ws, "r1", page_id="READY", timezone="America/New_York")
    token(ws, "n1", page_id="NOADS", timezone="America/New_York")
    token(ws, "f1", page_id="FR", timezone="America/New_York")
    token(ws, "f2", page_id="FR", timezone="Europe/Madrid")
    token(ws, "e1", page_id="EUONLY", timezone="Europe/Madrid")
    result = audit(ws)
    rows = {r["page_id"]: r for r in ws.db.query("SELECT * FROM audit_pages")}
    assert rows["READY"]["status"] == "ready" and rows["READY"]["reasons"] == "[]"
    assert rows["NOADS"]["status"] == "needs_action" and "PAGE_NO_AD_ACCOUNT" in rows["NOADS"]["reasons"]
    assert rows["FR"]["status"] == "blocked"
    assert "PAGE_BUSINESS_COUNTRY_UNSUPPORTED" in rows["FR"]["reasons"]
    assert "BLOCKED_TOKENS" in rows["FR"]["reasons"]
    assert (rows["FR"]["blocked"], rows["FR"]["stay_on_rn"]) == (1, 1)
    # everything stays on RN for good: nothing to do, though the flag is kept
    assert rows["EUONLY"]["status"] == "ready" and rows["EUONLY"]["flags"] != 0
    assert result.pages == {"ready": 2, "needs_action": 1, "blocked": 1}
    found = {(r["page_id"], r["code"]) for r in ws.db.query("SELECT * FROM v_audit_page_findings")}
    assert ("NOADS", "PAGE_NO_AD_ACCOUNT") in found


def test_page_whose_tokens_lose_rn_is_blocked_on_both_sides_of_the_cutoff(ws):
    page(ws, business_country="FR")
    token(ws, "t1", timezone="America/New_York")
    audit(ws, BEFORE_CUT)
    p = next(ws.db.query("SELECT * FROM audit_pages"))
    assert p["status"] == "blocked"
    assert "BLOCKED_TOKENS" in p["reasons"] and "PAGE_BUSINESS_COUNTRY_UNSUPPORTED" in p["reasons"]
    audit(ws, AFTER)
    assert next(ws.db.query("SELECT status FROM audit_pages"))["status"] == "blocked"


def test_content_outcomes_are_counted_and_roll_up_to_pages(ws):
    page(ws)
    token(ws, "t1", timezone="America/New_York")
    for i, outcome in enumerate(["exact", "exact", "lossy", "needs_edit", "unsupported", None]):
        ws.db["contents"].insert({"content_hash": f"h{i}", "page_id": "P", "source": "library",
                                  "message": "{}", "outcome": outcome})
    result = audit(ws)
    assert result.contents == {"exact": 2, "lossy": 1, "needs_edit": 1, "unsupported": 1,
                               "not_converted": 1}
    assert result.findings["CONTENT_LOSSY"] == 1 and result.findings["CONTENT_UNSUPPORTED"] == 1
    assert result.findings["CONTENT_NOT_CONVERTED"] == 1
    p = next(ws.db.query("SELECT * FROM audit_pages WHERE page_id = 'P'"))
    assert p["status"] == "needs_action" and p["contents_needing_work"] == 2
    assert "PAGE_CONTENT_NEEDS_WORK" in p["reasons"]


def test_rerun_replaces_details_and_keeps_run_history(ws):
    page(ws)
    token(ws, "t1", timezone="America/New_York")
    first = audit(ws, BEFORE_CUT)
    second = audit(ws, AFTER)
    assert second.run_id == first.run_id + 1
    assert ws.db["audit_tokens"].count == 1
    assert {r["run_id"] for r in ws.db.query("SELECT run_id FROM audit_tokens")} == {second.run_id}
    runs = list(ws.db.query("SELECT as_of, status FROM audit_runs ORDER BY id"))
    assert runs == [{"as_of": "2026-01-15", "status": "done"}, {"as_of": "2026-03-01", "status": "done"}]
    assert latest_run(ws).summary["as_of"] == "2026-03-01"
    counts = {r["code"]: r["count"] for r in ws.db.query(
        "SELECT code, count FROM audit_run_findings WHERE run_id = ?", [second.run_id])}
    assert counts["MM_CADENCE_12H"] == 1 and counts["RN_DISCONTINUATION_COUNTDOWN"] == 0
    rows = list(ws.db.query("SELECT code FROM v_audit_token_findings ORDER BY code"))
    assert {"MM_CADENCE_12H", "REGION_INFERRED", "RN_DISCONTINUED"} == {r["code"] for r in rows}


def test_empty_workspace_audits_to_zeros(ws):
    result = audit(ws)
    assert result.tokens == 0 and result.verdicts == dict.fromkeys(
        ["migrate", "stay_on_rn", "blocked", "opted_out", "review"], 0)


def test_default_as_of_is_today_from_the_injected_clock(ws):
    fixed = datetime(2026, 2, 9, 23, 59, tzinfo=timezone.utc).timestamp()
    result = run_audit(ws, clock=lambda: fixed)
    assert result.as_of == date(2026, 2, 9) == today_utc(lambda: fixed)


def test_audit_freshness_tells_the_planner_when_to_re_audit(ws):
    from migrator.audit import audit_freshness

    assert audit_freshness(ws) is None
    page(ws)
    token(ws, "t1", timezone="America/New_York")
    clock = iter([1_000.0, 1_001.0, 1_002.0, 1_003.0]).__next__
    run_audit(ws, as_of=AFTER, clock=clock)
    fresh = audit_freshness(ws)
    assert fresh["stale"] is False and fresh["as_of"] == "2026-03-01"
    assert fresh["rules_fingerprint"] == load_rules().fingerprint()
    ws.db["ingest_runs"].insert({"kind": "tokens", "path": "x.csv", "started_at": 2_000,
                                 "finished_at": 2_001})
    assert audit_freshness(ws)["stale"] is True


def test_explicit_country_spellings_and_invalid_values(ws):
    page(ws)
    token(ws, "lower", country="de", timezone="America/New_York")
    token(ws, "uk", country="UK", timezone="America/New_York")
    token(ws, "bad", country="ZZ", timezone="America/New_York")  # not a country: zone decides
    audit(ws)
    assert (get(ws, "lower")["verdict"], get(ws, "lower")["region"]) == ("stay_on_rn", "DE")
    assert (get(ws, "uk")["verdict"], get(ws, "uk")["region"]) == ("stay_on_rn", "GB")
    bad = get(ws, "bad")
    assert (bad["verdict"], bad["region"], bad["region_source"]) == ("migrate", "US", "timezone")


def test_many_businesses_share_decisions_by_class(ws):
    for i, bc in enumerate(["US", "BR", "IN", "FR", "DE", None, "ZZ"]):
        page(ws, f"P{i}", business_country=bc)
        token(ws, f"t{i}", page_id=f"P{i}", timezone="America/New_York")
    audit(ws)
    got = [get(ws, f"t{i}")["verdict"] for i in range(7)]
    assert got == ["migrate", "migrate", "migrate", "blocked", "blocked", "review", "review"]

"""Planning behaviour: windows and time zones, one send per person, next-eligible, budgets,
content mapping, zero-send plans, and what the saved plan may (not) contain."""

from __future__ import annotations

import json
from datetime import date

import pytest

from migrator.errors import PlanError
from migrator.plan import budget_capacity, load_plan, write_plan
from migrator.plan.windows import Windows

from _plan import AS_OF, estate, lib, plan, sends, tok, ts, utc


# --- budget arithmetic (minor units, integers) -------------------------------------------

@pytest.mark.parametrize("daily, lifetime, cost, expected", [
    (1000, None, 2, ("daily", 500)),
    (999, None, 2, ("daily", 499)),          # floor: half a message is not a message
    (None, 3000, 7, ("lifetime", 428)),
    (None, 1, 2, ("lifetime", 0)),
    (None, 3000, 0, ("lifetime", None)),     # free messages are never budget-limited
    (None, None, 2, ("none", None)),
])
def test_budget_capacity(daily, lifetime, cost, expected):
    assert budget_capacity(daily, lifetime, cost) == expected


def test_lifetime_budget_excludes_who_it_cannot_reach(ws, tmp_path):
    estate(ws, tmp_path, [tok(i) for i in range(10)])
    p = plan(ws, tmp_path, "[pages.\"P1\"]\nlifetime_budget = 15\n")   # 15 // 2 = 7 messages
    c = p.campaigns[0]
    assert (p.sends, c.sends, c.unreachable_by_budget, p.unreachable_by_budget) == (7, 7, 3, 3)
    assert c.estimated_cost == 14 and c.budget_total == 15 and p.estimated_cost == {"USD": 14}
    assert p.excluded["over_budget"] == 3
    rows = list(ws.db.query("SELECT reason, campaign_key FROM v_plan_excluded WHERE plan_id = ?", [p.plan_id]))
    assert rows == [{"reason": "over_budget", "campaign_key": "c1"}] * 3
    # lifetime without an end: Meta's default end, start + 30 days
    assert c.end_time == ts("2026-03-02T00:00:00Z") + 30 * 86400


def test_daily_budget_spreads_sends_over_days(ws, tmp_path):
    estate(ws, tmp_path, [tok(i) for i in range(7)])
    p = plan(ws, tmp_path, "[pages.\"P1\"]\ndaily_budget = 6\n")      # 3 messages a day
    days = [utc(r["not_before"])[:10] for r in sends(ws, p.plan_id)]
    assert days == ["2026-03-02"] * 3 + ["2026-03-03"] * 3 + ["2026-03-04"]
    c = p.campaigns[0]
    assert c.sends == 7 and c.unreachable_by_budget == 0
    assert c.estimated_cost == 14 and c.budget_total == 18     # 6 a day over the 3 days used
    for r in sends(ws, p.plan_id):                             # every push lands in the window
        assert "13:00" <= utc(r["not_before"])[11:] < "21:00"  # 09:00-17:00 EST


def test_daily_budget_with_an_end_leaves_the_rest_unreachable(ws, tmp_path):
    estate(ws, tmp_path, [tok(i) for i in range(7)])
    p = plan(ws, tmp_path, "[pages.\"P1\"]\ndaily_budget = 6\n")
    assert p.sends == 7
    spec = ("[pages.\"P1\"]\ndaily_budget = 6\n")
    from _plan import BASE_SPEC, spec_file
    from migrator.plan import make_plan
    f = spec_file(tmp_path, spec, base=BASE_SPEC.replace("start = 2026-03-02T00:00:00Z",
                                                          "start = 2026-03-02T00:00:00Z\nend = 2026-03-04T00:00:00Z"))
    p3 = make_plan(ws, f, as_of=AS_OF)
    assert (p3.sends, p3.unreachable_by_budget) == (6, 1)
    assert p.plan_id != p3.plan_id


def test_budget_required_unless_allow_unbounded(ws, tmp_path):
    estate(ws, tmp_path, [tok(1)])
    from _plan import BASE_SPEC, spec_file
    from migrator.plan import make_plan
    base = BASE_SPEC.replace("daily_budget = 1000\n", "")
    with pytest.raises(PlanError) as e:
        make_plan(ws, spec_file(tmp_path, base=base), as_of=AS_OF)
    assert "campaign.daily_budget or campaign.lifetime_budget" in e.value.message
    assert str(tmp_path / "spec.toml") in e.value.message
    p = make_plan(ws, spec_file(tmp_path, base="allow_unbounded = true\n" + base), as_of=AS_OF)
    assert p.sends == 1 and p.budget == {"USD": None} and p.campaigns[0].budget_total is None


# --- send windows in local time, across zones and the date line --------------------------

def test_windows_across_the_date_line():
    w = Windows(9 * 60, 12 * 60)
    t = ts("2026-12-01T00:00:00Z")
    # Kiritimati (UTC+14) is already at 14:00 on Dec 1: next window Dec 2 09:00 local
    assert utc(w.next_open("Pacific/Kiritimati", t)) == "2026-12-01T19:00"
    # Pago Pago (UTC-11) is at 13:00 on Nov 30: next window Dec 1 09:00 local
    assert utc(w.next_open("Pacific/Pago_Pago", t)) == "2026-12-01T20:00"
    # inside the window: now
    assert w.next_open("UTC", ts("2026-12-01T10:30:00Z")) == ts("2026-12-01T10:30:00Z")
    # a window past midnight (22:00-02:00): 01:00 is still inside the previous evening's
    night = Windows(22 * 60, 2 * 60)
    assert night.next_open("UTC", ts("2026-12-01T01:00:00Z")) == ts("2026-12-01T01:00:00Z")
    assert utc(night.next_open("UTC", ts("2026-12-01T03:00:00Z"))) == "2026-12-01T22:00"


def test_windows_follow_daylight_saving():
    w = Windows(9 * 60, 17 * 60)
    # New York: EST (UTC-5) before 2026-03-08, EDT (UTC-4) after
    assert utc(w.next_open("America/New_York", ts("2026-03-06T00:00:00Z"))) == "2026-03-06T14:00"
    assert utc(w.next_open("America/New_York", ts("2026-03-09T00:00:00Z"))) == "2026-03-09T13:00"


def test_plan_schedules_each_subscriber_in_local_time(ws, tmp_path):
    toks = [tok(1, tz="Pacific/Kiritimati"), tok(2, tz="Pacific/Pago_Pago"), tok(3, tz="Asia/Tokyo"),
            tok(4, tz=""), tok(5, tz="Not/AZone")]
    estate(ws, tmp_path, toks)
    from _plan import BASE_SPEC, spec_file
    from migrator.plan import make_plan
    p = make_plan(ws, spec_file(tmp_path, base=BASE_SPEC.replace("09:00-17:00", "09:00-12:00")), as_of=AS_OF)
    got = {r["token"]: utc(r["not_before"]) for r in sends(ws, p.plan_id)}
    # the floor is 2026-03-02 00:00 UTC = 14:00 on Mar 2 in Kiritimati (UTC+14), 13:00 on
    # Mar 1 in Pago Pago (UTC-11): both past their window, on different local dates
    assert got["TOKEN000001SECRET"] == "2026-03-02T19:00"   # Mar 3 09:00 local
    assert got["TOKEN000002SECRET"] == "2026-03-02T20:00"   # Mar 2 09:00 local
    assert got["TOKEN000003SECRET"] == "2026-03-02T00:00"   # 09:00 in Tokyo = 00:00 UTC
    assert got["TOKEN000004SECRET"] == "2026-03-02T09:00"   # no zone: default UTC
    assert got["TOKEN000005SECRET"] == "2026-03-02T09:00"   # unknown zone: default UTC
    order = [r["token"] for r in sends(ws, p.plan_id)]
    assert order == ["TOKEN000003SECRET", "TOKEN000004SECRET", "TOKEN000005SECRET",
                     "TOKEN000001SECRET", "TOKEN000002SECRET"]   # batches follow the window


def test_default_timezone_and_warmup(ws, tmp_path):
    estate(ws, tmp_path, [tok(4, tz="")])
    from _plan import BASE_SPEC, spec_file
    from migrator.plan import make_plan
    base = BASE_SPEC.replace("warmup_minutes = 0", "warmup_minutes = 0\ndefault_timezone = \"Asia/Tokyo\"")
    p = make_plan(ws, spec_file(tmp_path, base=base), as_of=AS_OF)
    assert utc(sends(ws, p.plan_id)[0]["not_before"]) == "2026-03-02T00:00"
    base = BASE_SPEC.replace("warmup_minutes = 0", "warmup_minutes = 90\ndefault_timezone = \"Asia/Tokyo\"")
    p = make_plan(ws, spec_file(tmp_path, base=base), as_of=AS_OF)
    assert utc(sends(ws, p.plan_id)[0]["not_before"]) == "2026-03-02T01:30"


# --- who gets a send ----------------------------------------------------------------------

def test_one_send_per_person_per_page(ws, tmp_path):
    toks = [tok(1, psid="SAME", topic="Deals"), tok(2, psid="SAME", topic="News"), tok(3)]
    estate(ws, tmp_path, toks, content=[lib("P1", "deals", "Deals", {"text": "Deals!"}),
                                         lib("P1", "news", "News", {"text": "News!"})])
    p = plan(ws, tmp_path)
    rows = sends(ws, p.plan_id)
    assert p.sends == 2 and len({r["psid"] for r in rows}) == 2
    assert p.excluded["same_person"] == 1
    assert len({r["token_id"] for r in rows}) == len(rows)


def test_next_eligible_scheduling(ws, tmp_path):
    later = "2026-03-05T15:30:00Z"
    estate(ws, tmp_path, [tok(1), tok(2, nea=later), tok(3, nea="2026-03-05T23:00:00Z"),
                          tok(4, nea="2026-02-01T00:00:00Z")])
    p = plan(ws, tmp_path)
    got = {r["token"]: utc(r["not_before"]) for r in sends(ws, p.plan_id)}
    assert got["TOKEN000001SECRET"] == "2026-03-02T14:00"     # window opens 09:00 EST
    assert got["TOKEN000002SECRET"] == "2026-03-05T15:30"     # eligible inside the window
    assert got["TOKEN000003SECRET"] == "2026-03-06T14:00"     # eligible at night: next window
    assert got["TOKEN000004SECRET"] == "2026-03-02T14:00"     # eligible in the past: as usual
    order = [r["token"] for r in sends(ws, p.plan_id)]
    assert order[-2:] == ["TOKEN000002SECRET", "TOKEN000003SECRET"]
    for r in sends(ws, p.plan_id):
        if r["next_eligible_at"]:
            assert r["not_before"] >= r["next_eligible_at"]


def test_batches_and_batches_per_day(ws, tmp_path):
    estate(ws, tmp_path, [tok(i) for i in range(10)])
    p = plan(ws, tmp_path, "batch_size = 3\nbatches_per_day = 2\n")
    assert [(b.batch, b.day, b.sends) for b in p.batches] == [
        (1, "2026-03-02", 3), (2, "2026-03-02", 3), (3, "2026-03-03", 3), (4, "2026-03-03", 1)]
    rows = sends(ws, p.plan_id)
    assert [r["batch"] for r in rows] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    assert [r["send_id"] for r in rows] == list(range(1, 11))
    assert utc(rows[6]["not_before"]) == "2026-03-03T14:00"    # moved into the next day's window
    assert p.batches[2].first_send_id == 7 and p.batches[2].last_send_id == 9


def test_slow_and_fast_paths_agree(ws, tmp_path):
    """The set-based path (no budget binds) gives exactly what the sequential pass gives."""
    import random

    rnd = random.Random(5)
    zones = ["Pacific/Kiritimati", "Pacific/Pago_Pago", "America/New_York", "Asia/Kolkata", "", "Europe/Paris"]
    toks = [tok(i, tz=rnd.choice(zones), topic=rnd.choice(["Deals", "News"]),
                nea=rnd.choice(["", "", "2026-03-03T05:00:00Z", "2026-03-04T18:00:00Z"])) for i in range(60)]
    estate(ws, tmp_path, toks, content=[lib("P1", "deals", "Deals", {"text": "Deals!"}),
                                         lib("P1", "news", "News", {"text": "News!"})])
    from migrator.plan import schedule

    fast = plan(ws, tmp_path, "batch_size = 7\nbatches_per_day = 3\n")
    fast_rows = [(r["send_id"], r["token_id"], r["batch"], r["not_before"], r["message_key"])
                 for r in sends(ws, fast.plan_id)]
    orig = schedule.Scheduler.fast
    schedule.Scheduler.fast = lambda self: False
    try:
        slow = plan(ws, tmp_path, "batch_size = 7\nbatches_per_day = 3\n")
    finally:
        schedule.Scheduler.fast = orig
    slow_rows = [(r["send_id"], r["token_id"], r["batch"], r["not_before"], r["message_key"])
                 for r in sends(ws, slow.plan_id)]
    assert fast_rows == slow_rows and len(fast_rows) == 60
    assert fast.model_dump(exclude={"created_at"}) == slow.model_dump(exclude={"created_at"})


# --- content mapping ----------------------------------------------------------------------

NEEDS_EDIT = {"text": "x" * 700}       # MM allows 640 characters


def test_needs_edit_content_must_be_overridden_or_excluded(ws, tmp_path):
    estate(ws, tmp_path, [tok(1), tok(2, topic="Long")],
           content=[lib("P1", "deals", "Deals", {"text": "Deals!"}), lib("P1", "long", "Long", NEEDS_EDIT)])
    with pytest.raises(PlanError) as e:
        plan(ws, tmp_path)
    assert "topic 'Long'" in e.value.message and "needs_edit" in e.value.message
    assert str(tmp_path / "spec.toml") in e.value.message
    p = plan(ws, tmp_path, "[[content]]\npage_id = \"P1\"\ntopic = \"Long\"\nexclude = true\n")
    assert p.sends == 1 and p.excluded["content_excluded"] == 1
    p = plan(ws, tmp_path, "[[content]]\npage_id = \"P1\"\ntopic = \"Long\"\nmessage = {text = \"Short.\"}\n")
    assert p.sends == 2
    m = {m.message["text"]: m for m in p.messages}
    assert m["Short."].source == "override" and m["Deals!"].source == "converted"


def test_override_message_is_validated(ws, tmp_path):
    estate(ws, tmp_path, [tok(1)])
    with pytest.raises(PlanError) as e:
        plan(ws, tmp_path, "[[content]]\ntopic = \"Deals\"\nmessage = {text = \"%s\"}\n" % ("y" * 700))
    assert "content[0].message" in e.value.message


def test_content_by_key_id_and_hash_and_no_content(ws, tmp_path):
    estate(ws, tmp_path, [tok(1), tok(2, topic="Other")],
           content=[lib("P1", "deals", "Deals", {"text": "Deals!"}), lib("P1", "alt", None, {"text": "Alt!"})])
    p = plan(ws, tmp_path)
    assert p.sends == 1 and p.excluded["no_content"] == 1
    cid, chash = next(ws.conn.execute("SELECT id, content_hash FROM contents WHERE key = 'alt'"))
    for ref in ('"alt"', str(cid), f'"{chash}"'):
        p = plan(ws, tmp_path, f"[[content]]\npage_id = \"P1\"\ntopic = \"Other\"\ncontent = {ref}\n")
        assert p.sends == 2 and {m.message["text"] for m in p.messages} == {"Deals!", "Alt!"}
    with pytest.raises(PlanError, match=r"content\[0\]\.content: no content"):
        plan(ws, tmp_path, "[[content]]\ntopic = \"Other\"\ncontent = \"nope\"\n")


def test_campaign_per_topic_and_naming(ws, tmp_path):
    estate(ws, tmp_path, [tok(1), tok(2, topic="News")],
           content=[lib("P1", "deals", "Deals", {"text": "Deals!"}), lib("P1", "news", "News", {"text": "News!"})])
    p = plan(ws, tmp_path.joinpath("a"), "")
    assert len(p.campaigns) == 1 and len(p.campaigns[0].messages) == 2
    from _plan import BASE_SPEC, spec_file
    from migrator.plan import make_plan
    base = BASE_SPEC.replace("[campaign]", "[campaign]\nper = \"page_topic\"\nname = \"{page_name}: {topic} ({key})\"")
    p = make_plan(ws, spec_file(tmp_path, base=base), as_of=AS_OF)
    assert [c.name for c in p.campaigns] == ["Shop One: Deals (c1)", "Shop One: News (c2)"]
    assert [c.topic_title for c in p.campaigns] == ["Deals", "News"]


# --- pages and accounts ------------------------------------------------------------------

def test_page_account_mapping_and_exclusions(ws, tmp_path):
    pages = [["P1", "Shop One", "US", "111", "USD"], ["P2", "No Account", "US", "", ""],
             ["P3", "Other Account", "US", "999", "USD"], ["P4", "Mapped", "US", "", "USD"]]
    toks = [tok(1), tok(2, page="P2"), tok(3, page="P3"), tok(4, page="P4"), tok(5, page="P1", psid="X")]
    content = [lib(p, "d", "Deals", {"text": "Hi"}) for p in ("P1", "P2", "P3", "P4")]
    estate(ws, tmp_path, toks, pages=pages, content=content)
    p = plan(ws, tmp_path, "[pages.\"P4\"]\nad_account = \"act_111\"\n")
    assert p.sends == 3
    assert (p.excluded["no_ad_account"], p.excluded["ad_account_not_in_spec"]) == (1, 1)
    p = plan(ws, tmp_path, "[pages.\"P1\"]\nexclude = true\n")
    assert p.excluded["page_excluded"] == 2


def test_business_country_must_be_an_mm_country(ws, tmp_path):
    estate(ws, tmp_path, [tok(1)])
    from _plan import BASE_SPEC, spec_file
    from migrator.plan import make_plan
    with pytest.raises(PlanError) as e:
        make_plan(ws, spec_file(tmp_path, base=BASE_SPEC.replace('business_country = "US"',
                                                                  'business_country = "DE"')), as_of=AS_OF)
    assert "ad_accounts[0].business_country: DE is not an MM business country" in e.value.message


# --- zero sends, no audit, and the file ---------------------------------------------------

def test_zero_send_plan_is_valid_and_says_why(ws, tmp_path):
    estate(ws, tmp_path, [tok(1, country="DE")])          # stays on RN: no migrate subscriber
    p = plan(ws, tmp_path)
    assert p.sends == 0 and p.campaigns == [] and p.batches == []
    assert "no subscriber with verdict migrate" in p.zero_send_reason
    out = write_plan(p, tmp_path / "plan.json")
    assert load_plan(out).zero_send_reason == p.zero_send_reason


def test_zero_sends_when_everyone_is_excluded(ws, tmp_path):
    estate(ws, tmp_path, [tok(1), tok(2)])
    p = plan(ws, tmp_path, "[pages.\"P1\"]\nexclude = true\n")
    assert p.sends == 0 and "all 2 migrate subscribers were excluded (page_excluded 2)" == p.zero_send_reason


def test_no_audit_is_refused(ws, tmp_path):
    from _plan import ingest
    ingest(ws, tmp_path, tokens=[tok(1)], pages=[["P1", "Shop", "US", "111", "USD"]])
    with pytest.raises(PlanError, match="no finished audit"):
        plan(ws, tmp_path)


def test_plan_file_has_no_raw_tokens_or_psids_and_round_trips(ws, tmp_path):
    estate(ws, tmp_path, [tok(i) for i in range(5)])
    p = plan(ws, tmp_path)
    out = write_plan(p, tmp_path / "plan.json")
    text = out.read_text()
    assert "SECRET" not in text and "PSID" not in text
    stored = ws.conn.execute("SELECT body FROM plans WHERE plan_id = ?", (p.plan_id,)).fetchone()[0]
    assert "SECRET" not in stored and json.loads(stored)["plan_id"] == p.plan_id
    assert load_plan(out) == p
    assert p.as_of == AS_OF.isoformat() and p.rules_version and set(p.inputs) == {
        "inventory", "audit", "content", "spec", "rules"}


def test_replanning_the_same_inputs_is_idempotent(ws, tmp_path):
    estate(ws, tmp_path, [tok(i) for i in range(5)])
    a = plan(ws, tmp_path)
    b = plan(ws, tmp_path)
    assert a.plan_id == b.plan_id and a.sends_digest == b.sends_digest
    assert ws.conn.execute("SELECT COUNT(*) FROM plan_sends").fetchone()[0] == 5
    c = plan(ws, tmp_path, as_of=date(2026, 3, 2))
    assert c.plan_id != a.plan_id and "the audit is as of 2026-03-01" in c.warnings[0]


def test_sends_after_the_campaign_end_are_excluded(ws, tmp_path):
    estate(ws, tmp_path, [tok(1), tok(2, nea="2026-03-20T15:00:00Z"), tok(3), tok(4, nea="2029-01-01T00:00:00Z")])
    from _plan import BASE_SPEC, spec_file
    from migrator.plan import make_plan
    base = BASE_SPEC.replace("start = 2026-03-02T00:00:00Z",
                             "start = 2026-03-02T00:00:00Z\nend = 2026-03-10T00:00:00Z")
    p = make_plan(ws, spec_file(tmp_path, base=base), as_of=AS_OF)
    assert p.sends == 2 and p.excluded["after_campaign_end"] == 1 and p.excluded["eligible_too_late"] == 1
    assert [r["send_id"] for r in sends(ws, p.plan_id)] == [1, 2]      # numbered without gaps
    assert p.batches[0].first_send_id == 1 and p.batches[0].last_send_id == 2

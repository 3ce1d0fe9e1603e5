"""A campaign start in the past: refused when it is long gone (a typo, last month's spec), a
warning when it is within the hour (a clock that moved, a plan made just after its start)."""

from __future__ import annotations

from datetime import date

import pytest

from migrator.errors import PlanError
from migrator.plan import make_plan

from _plan import estate, spec_file, tok, ts

LAST_YEAR = "start = 2025-03-02T00:00:00Z"


def _spec(tmp_path, start_line):
    from _plan import BASE_SPEC

    return spec_file(tmp_path, base=BASE_SPEC.replace("start = 2026-03-02T00:00:00Z", start_line))


def test_a_start_long_gone_is_refused_through_the_cli(ws, tmp_path, cli):
    estate(ws, tmp_path, [tok(i) for i in range(3)])
    spec = _spec(tmp_path, LAST_YEAR)          # the plan is as of today (the real clock)
    r = cli("plan", spec, "-o", tmp_path / "p.json")
    assert r.exit_code == 1, r.output
    assert "campaign.start: 2025-03-02 00:00 UTC is" in r.output and "days before now" in r.output
    assert "Meta refuses a campaign start in the past" in r.output
    assert "set [campaign] start to a moment still ahead, or leave it out" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "p.json").exists()
    assert ws.conn.execute("SELECT COUNT(*) FROM plans").fetchone()[0] == 0


def test_a_what_if_plan_as_of_an_earlier_date_judges_the_start_by_that_date(ws, tmp_path, cli):
    estate(ws, tmp_path, [tok(i) for i in range(3)])
    r = cli("plan", _spec(tmp_path, "start = 2026-03-02T00:00:00Z"), "--as-of", "2026-03-01",
            "-o", tmp_path / "p.json")
    assert r.exit_code == 0, r.output
    r = cli("plan", _spec(tmp_path, "start = 2026-02-20T00:00:00Z"), "--as-of", "2026-03-01",
            "-o", tmp_path / "q.json")
    assert r.exit_code == 1 and "9 days before the as-of date 2026-03-01 00:00 UTC" in r.output, r.output


@pytest.mark.parametrize("late, refused", [(0, False), (5 * 60, False), (3600, False), (3601, True),
                                           (3 * 3600, True)])
def test_a_few_minutes_in_the_past_is_a_warning_not_a_refusal(ws, tmp_path, late, refused):
    estate(ws, tmp_path, [tok(i) for i in range(3)])
    start = ts("2026-03-02T09:00:00Z")
    spec = _spec(tmp_path, "start = 2026-03-02T09:00:00Z")
    plan = lambda: make_plan(ws, spec, as_of=date(2026, 3, 2), clock=lambda: start + late)  # noqa: E731
    if refused:
        with pytest.raises(PlanError, match="before now"):
            plan()
        return
    p = plan()
    past = [w for w in p.warnings if w.startswith("campaign.start")]
    if late:
        assert past == [f"campaign.start 2026-03-02 09:00 UTC is {late // 60} minutes before now: "
                        "the campaigns start when the executor creates them"]
    else:
        assert past == []


def test_no_start_in_the_spec_is_never_a_past_start(ws, tmp_path):
    estate(ws, tmp_path, [tok(i) for i in range(3)])
    spec = _spec(tmp_path, "")
    p = make_plan(ws, spec, as_of=date(2026, 3, 2), clock=lambda: ts("2026-03-02T18:00:00Z"))
    assert not [w for w in p.warnings if w.startswith("campaign.start")]


def test_a_plan_made_ahead_judges_the_start_by_the_clock(ws, tmp_path):
    """As of tomorrow, made today: a start later today is ahead of now, not in the past."""
    estate(ws, tmp_path, [tok(i) for i in range(3)])
    spec = _spec(tmp_path, "start = 2026-03-02T18:00:00Z")
    p = make_plan(ws, spec, as_of=date(2026, 3, 3), clock=lambda: ts("2026-03-02T09:00:00Z"))
    assert not [w for w in p.warnings if w.startswith("campaign.start")]
    with pytest.raises(PlanError, match="before now"):
        make_plan(ws, _spec(tmp_path, "start = 2026-03-02T06:00:00Z"), as_of=date(2026, 3, 3),
                  clock=lambda: ts("2026-03-02T09:00:00Z"))


def test_a_plan_as_of_the_local_today_west_of_utc_judges_the_start_by_the_clock(ws, tmp_path):
    """20:00 in Los Angeles is already tomorrow in UTC: `--as-of` the engineer's own today is not a
    what-if of an earlier date, and a start 19 hours gone is refused as with the UTC date."""
    estate(ws, tmp_path, [tok(i) for i in range(3)])
    evening_in_la = ts("2026-03-03T04:00:00Z")                 # 2026-03-02 20:00 PST
    with pytest.raises(PlanError, match="before now"):
        make_plan(ws, _spec(tmp_path, "start = 2026-03-02T09:00:00Z"), as_of=date(2026, 3, 2),
                  clock=lambda: evening_in_la)
    # a start later that evening is still ahead: fine
    p = make_plan(ws, _spec(tmp_path, "start = 2026-03-03T06:00:00Z"), as_of=date(2026, 3, 2),
                  clock=lambda: evening_in_la)
    assert not [w for w in p.warnings if w.startswith("campaign.start")]

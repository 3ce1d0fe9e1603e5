"""Issue 16.7 (planner): Meta's budget and schedule limits from the rules, both sides of each."""

from __future__ import annotations

import pytest

from migrator.errors import PlanError
from _plan import BASE_SPEC, estate, plan, tok


def _plan(ws, tmp_path, extra="", base=BASE_SPEC, **kw):
    estate(ws, tmp_path / "in", [tok(i) for i in range(3)])
    from _plan import make_plan, spec_file
    return make_plan(ws, spec_file(tmp_path / "spec", extra, base=base), clock=lambda: 1_772_000_000, **kw)


def test_start_at_most_30_days_ahead(ws, tmp_path):
    from datetime import date
    ok = _plan(ws, tmp_path, as_of=date(2026, 1, 31))           # start 2026-03-02: 30 days ahead
    assert ok.campaigns
    with pytest.raises(PlanError, match="at most 30 days ahead"):
        _plan(ws, tmp_path / "late", as_of=date(2026, 1, 30))   # 31 days ahead


def test_minimum_daily_and_lifetime_budgets_on_both_sides(ws, tmp_path):
    low = _plan(ws, tmp_path, base=BASE_SPEC.replace("daily_budget = 1000", "daily_budget = 99"))
    assert any("below Meta's documented minimum daily budget of USD 1.00" in w for w in low.warnings)
    at = _plan(ws, tmp_path / "at", base=BASE_SPEC.replace("daily_budget = 1000", "daily_budget = 100"))
    assert not any("minimum daily budget" in w for w in at.warnings)
    life = _plan(ws, tmp_path / "life", base=BASE_SPEC.replace("daily_budget = 1000", "lifetime_budget = 2999"))
    assert any("minimum lifetime budget of USD 30.00" in w for w in life.warnings)
    life_ok = _plan(ws, tmp_path / "life_ok", base=BASE_SPEC.replace("daily_budget = 1000", "lifetime_budget = 3000"))
    assert not any("minimum lifetime budget" in w for w in life_ok.warnings)


def test_the_plus_75_percent_day_and_the_warmup_minimum_are_said(ws, tmp_path):
    p = _plan(ws, tmp_path)
    # money in major units, like every other surface (found by review: "up to 1750 USD minor units")
    assert any("up to USD 17.50 (+75 %" in w and "a week at most USD 70.00" in w for w in p.warnings)
    assert any("warmup_minutes 0 is shorter than Meta's documented warm-up of 60" in w for w in p.warnings)
    ok = _plan(ws, tmp_path / "w", base=BASE_SPEC.replace("warmup_minutes = 0", "warmup_minutes = 60"))
    assert not any("warm-up" in w for w in ok.warnings)

"""The pure decision function against a brute-force oracle written from PRODUCT.md."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.audit import findings as F
from migrator.audit.decide import Context, decide
from migrator.regions import EXPLICIT, TIMEZONE, UNKNOWN, Resolution
from migrator.rules import load_rules
from _hyp import examples

RULES = load_rules()
EXCL = RULES.mm_excluded_recipients()
BIZ = RULES.mm_business_set()
COUNTRIES = sorted({"US", "BR", "IN", "DE", "FR", "GB", "JP", "KR", "AU", "NO", "CH", "CA", "MC",
                    "SJ", "AE", "NZ", "TR", "ES"})


def oracle(r: str, b: str, day: date, basis: str) -> str:
    """The path that lasts past every known date (issue 16.2): MM once launched, else RN where
    it survives; RN that ends on 2026-02-10 is no lasting path, whatever the day."""
    mm = r not in EXCL and b in BIZ
    exempt = {"recipient": r in EXCL, "business": b in EXCL, "either": r in EXCL or b in EXCL}[basis]
    return "migrate" if mm else "stay_on_rn" if exempt else "blocked"


days = st.dates(min_value=date(2025, 6, 1), max_value=date(2026, 6, 1))


@settings(max_examples=examples(300), deadline=None)
@given(cands=st.sets(st.sampled_from(COUNTRIES), min_size=1, max_size=4),
       business=st.sampled_from(COUNTRIES), day=days,
       basis=st.sampled_from(["recipient", "business", "either"]))
def test_certain_exactly_when_every_candidate_agrees(cands, business, day, basis):
    ctx = Context.build(RULES, day)
    ctx = Context(**{**ctx.__dict__, "basis": basis})
    res = Resolution(TIMEZONE if len(cands) > 1 else EXPLICIT, tuple(sorted(cands)))
    d = decide(res, business, ctx)
    verdicts = {oracle(r, business, day, basis) for r in cands}
    if len(verdicts) == 1:
        assert d.certain and d.verdict == verdicts.pop() and d.detail is None
    else:
        assert not d.certain and d.verdict == "review"
        assert d.flags & F.mask("REGION_AMBIGUOUS")
        for r in cands:
            assert f"{r}: " in d.detail


@settings(max_examples=examples(100), deadline=None)
@given(business=st.sampled_from(COUNTRIES + [None]), day=days)
def test_unknown_region_is_certain_only_when_no_country_could_change_it(business, day):
    ctx = Context.build(RULES, day)
    d = decide(Resolution(UNKNOWN, ()), business, ctx)
    assert d.flags & F.mask("REGION_UNKNOWN")
    bs = [business] if business else COUNTRIES
    verdicts = {oracle(r, b, day, "recipient") for r in COUNTRIES + ["JP"] for b in bs}
    assert d.certain == (len(verdicts) == 1)


def test_the_day_before_and_of_the_discontinuation():
    cut = date(2026, 2, 10)
    res = Resolution(EXPLICIT, ("US",))
    before = decide(res, "FR", Context.build(RULES, cut - timedelta(days=1)))
    day_of = decide(res, "FR", Context.build(RULES, cut))
    assert (before.verdict, day_of.verdict) == ("blocked", "blocked")
    assert before.flags & F.mask("RN_ONLY_UNTIL_CUTOFF")
    assert not before.flags & F.mask("RN_DISCONTINUATION_COUNTDOWN")
    assert day_of.flags & F.mask("RN_DISCONTINUED")
    # a subscriber MM can take keeps the countdown on both sides until the date
    us = decide(res, "US", Context.build(RULES, cut - timedelta(days=1)))
    assert us.verdict == "migrate" and us.flags & F.mask("RN_DISCONTINUATION_COUNTDOWN")


def test_the_cutoff_sentence_is_true_and_plural_on_both_sides_of_the_date():
    """'0 day(s) after' was printed for an as-of 293 days past the cut-off."""
    from datetime import date

    from migrator.audit.engine import render_catalogue
    from migrator.rules import load_rules

    rules = load_rules()
    cutoff = rules.rn_discontinuation.value

    def sentence(as_of):
        return next(c["explanation"] for c in render_catalogue(rules, as_of)
                    if c["code"] == "RN_DISCONTINUATION_COUNTDOWN")

    assert sentence(date.fromordinal(cutoff.toordinal() - 12)).endswith("12 days after "
                                                                        f"{date.fromordinal(cutoff.toordinal() - 12)}.")
    assert "1 day after" in sentence(date.fromordinal(cutoff.toordinal() - 1))
    assert "293 days before 2026-11-30" in sentence(date(2026, 11, 30))
    assert all("(s)" not in c["explanation"] for c in render_catalogue(rules, date(2026, 11, 30)))

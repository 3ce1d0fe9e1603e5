"""The verdict for one (recipient region, business country) pair as of a date: a pure function.

The audit evaluates this once per distinct pair present in the workspace (a few thousand
at most) and joins the result to the tokens in SQL; per-token facts (opt-out, expiry,
duplicates, legacy frequency) are applied set-based afterwards (`migrator.audit.engine`).

For each candidate recipient country r and candidate business country b:
    MM works  <=> r not in MM recipient exclusions and b in the MM business countries
                  (before mm_launch it works from the launch on: MM_NOT_LAUNCHED says when)
    RN lasts  <=> the exemption holds (rn_exemption_basis: recipient -> r exempt;
                  business -> b exempt; either -> r or b exempt)
    verdict   =  migrate if MM works, else stay_on_rn if RN lasts, else blocked
The verdict describes the path that lasts past every known date: a subscriber
whose only path is RN until rn_discontinuation is `blocked` even before that date, with the
finding RN_ONLY_UNTIL_CUTOFF giving the date RN stops for them (they are lost then), because
"stay on RN" or "migrate before the date" would be advice nobody can follow.
An unknown recipient or business stands for every country. The verdict is certain only
when every candidate pair gives the same one; otherwise it is `review`, and `detail`
lists what each candidate would give.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from migrator.audit.findings import mask
from migrator.countries import iso_countries
from migrator.regions import TIMEZONE, UNKNOWN, Resolution
from migrator.rules import Rules

MIGRATE, STAY, BLOCKED, OPTED_OUT, REVIEW = "migrate", "stay_on_rn", "blocked", "opted_out", "review"
VERDICTS = (MIGRATE, STAY, BLOCKED, OPTED_OUT, REVIEW)


@dataclass(frozen=True)
class Decision:
    verdict: str
    certain: bool
    flags: int
    detail: str | None = None   # for review: what each candidate would give


@dataclass(frozen=True)
class Context:
    """The rule values a decision needs, precomputed once per audit run."""

    as_of: date
    mm_launched: bool
    rn_cut: bool                       # as_of on/after the discontinuation
    mm_excluded: frozenset[str]
    rn_exempt: frozenset[str]
    mm_business: frozenset[str]
    basis: str
    rn_cadence_changed: bool

    @classmethod
    def build(cls, rules: Rules, as_of: date) -> "Context":
        return cls(
            as_of=as_of,
            mm_launched=as_of >= rules.mm_launch.value,
            rn_cut=as_of >= rules.rn_discontinuation.value,
            mm_excluded=rules.mm_excluded_recipients(),
            rn_exempt=rules.rn_exempt_countries(),
            mm_business=rules.mm_business_set(),
            basis=rules.rn_exemption_basis.value,
            rn_cadence_changed=as_of >= rules.rn_cadence_change.value,
        )

    def exempt(self, r: str, b: str) -> bool:
        if self.basis == "recipient":
            return r in self.rn_exempt
        if self.basis == "business":
            return b in self.rn_exempt
        return r in self.rn_exempt or b in self.rn_exempt

    def verdict(self, r: str, b: str) -> str:
        if r not in self.mm_excluded and b in self.mm_business:
            return MIGRATE
        if self.exempt(r, b):
            return STAY
        return BLOCKED


def _representatives(ctx: Context, *, business: bool) -> tuple[str, ...]:
    """One country per class that matters, standing for 'any country'."""
    seen: dict[tuple, str] = {}
    for c in sorted(iso_countries()):
        key = ((c in ctx.mm_business) if business else (c in ctx.mm_excluded), c in ctx.rn_exempt)
        seen.setdefault(key, c)
    return tuple(seen.values())


@lru_cache(maxsize=64)
def _reps(ctx: Context, business: bool) -> tuple[str, ...]:
    return _representatives(ctx, business=business)


def decide(res: Resolution, business_country: str | None, ctx: Context) -> Decision:
    """Verdict and findings for a recipient resolution on a page with `business_country`."""
    recips = res.candidates or _reps(ctx, False)
    bizs = (business_country,) if business_country else _reps(ctx, True)
    table = {r: {b: ctx.verdict(r, b) for b in bizs} for r in recips}
    verdicts = {v for row in table.values() for v in row.values()}
    certain = len(verdicts) == 1
    verdict = next(iter(verdicts)) if certain else REVIEW

    flags = 0
    if res.source == UNKNOWN:
        flags |= mask("REGION_UNKNOWN")
    elif all(r in ctx.mm_excluded for r in res.candidates):
        flags |= mask("RECIPIENT_EXCLUDED_FROM_MM")
    if res.source == TIMEZONE:
        flags |= mask("REGION_INFERRED")
    if len(res.candidates) > 1 and any(len({table[r][b] for r in recips}) > 1 for b in bizs):
        flags |= mask("REGION_AMBIGUOUS")
    if res.conflict:
        flags |= mask("REGION_CONFLICT")
    if business_country is None:
        flags |= mask("BUSINESS_COUNTRY_UNKNOWN")
    elif business_country not in ctx.mm_business:
        flags |= mask("BUSINESS_COUNTRY_UNSUPPORTED")
    never_exempt = not any(ctx.exempt(r, b) for r in recips for b in bizs)
    if never_exempt:
        if ctx.rn_cut:
            flags |= mask("RN_DISCONTINUED")
        elif verdict == BLOCKED:
            flags |= mask("RN_ONLY_UNTIL_CUTOFF")
        else:
            flags |= mask("RN_DISCONTINUATION_COUNTDOWN")
    if not ctx.mm_launched:
        flags |= mask("MM_NOT_LAUNCHED")
    if verdict == MIGRATE:
        flags |= mask("MM_CADENCE_12H")
    if verdict == STAY and ctx.rn_cadence_changed:
        flags |= mask("RN_CADENCE_48H")

    detail = None
    if not certain:
        if res.candidates:
            detail = ", ".join(f"{r}: {'|'.join(sorted(set(table[r].values())))}" for r in recips)
        else:
            detail = "any country: " + "|".join(sorted(verdicts))
    return Decision(verdict, certain, flags, detail)

"""Budget and schedule checks of a plan against Meta's documented limits, from the rules.

Kept out of the builder so the checks stay one readable list: the minimum daily
budget per currency and the lifetime minimum (Meta's MM send-messages page,
https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/send-messages:
min_daily_budget_imp, lifetime = daily x 30), the campaign start at most 30 days ahead, the
warm-up minimum, and
the most a daily budget may spend on one day (+75 % on the send-messages page; the Marketing
API's +25 % is the other reading, see the rules note) so nobody is surprised by a bill.

Meta's real minimum is per ad account (GET act_<ID>/minimum_budgets); the rules hold the
documented example, so a budget under it is a warning naming both, not a refusal. A start
beyond the window is refused: Meta would refuse the campaign, and the plan would be stale
long before it could run.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from migrator.errors import PlanError
from migrator.money import format_money
from migrator.timeparse import DAY


def _midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())


def check_start(start: int, as_of: date, rules, where: str) -> None:
    """Refuse a campaign start more than mm_start_max_days_ahead days after the as-of date."""
    ahead = rules.mm_start_max_days_ahead.value
    if start - _midnight(as_of) > ahead * DAY:
        raise PlanError(
            f"{where}: campaign.start: more than {ahead} days after the as-of date {as_of.isoformat()}; "
            f"Meta accepts a start_time at most {ahead} days ahead (rules mm_start_max_days_ahead)",
            hint="plan again (with --as-of) no earlier than that many days before the start")


# A start this little in the past is a clock that moved or a plan made just after its start time:
# a warning (the executor omits a start_time that has passed, so the campaign starts when created).
PAST_START_TOLERANCE_SECONDS = 3600


def _ago(seconds: int) -> str:
    from migrator.words import plural

    if seconds >= 2 * DAY:
        return plural(seconds // DAY, "day")
    if seconds >= 2 * 3600:
        return plural(seconds // 3600, "hour")
    return plural(max(1, seconds // 60), "minute")


def check_start_not_past(start: datetime | None, as_of: date, now: float, where: str) -> str | None:
    """A `campaign.start` in the past: refused beyond PAST_START_TOLERANCE_SECONDS, else a warning.

    "Now" is the planner's clock, for a plan as of today (in any time zone) or a later date (made
    ahead); a plan as of an earlier date is a what-if, and its now is that date's 00:00 UTC. Meta refuses a campaign
    start_time in the past (reference/mm-api.md §1.1: "must be now/future"), and a start long gone
    is most likely a typo or last month's spec: the send floor, the budget days and a lifetime
    budget's end (start + 30 days) would all be reckoned from it.
    """
    if start is None:
        return None
    # the earliest date that is "today" somewhere (UTC-12): an engineer west of UTC plans as of
    # their own today, already yesterday in UTC; that is not a what-if of an earlier date
    today = datetime.fromtimestamp(now - 12 * 3600, timezone.utc).date()
    ref, ref_name = (int(now), "now") if as_of >= today else \
        (_midnight(as_of), f"the as-of date {as_of.isoformat()} 00:00 UTC")
    at = int(start.timestamp())
    late = ref - at
    if late <= 0:
        return None
    shown = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if late > PAST_START_TOLERANCE_SECONDS:
        raise PlanError(
            f"{where}: campaign.start: {shown} is {_ago(late)} before {ref_name}; Meta refuses a campaign "
            "start in the past, and the sends, budget days and a lifetime budget's end would be reckoned "
            "from it",
            hint="set [campaign] start to a moment still ahead, or leave it out (campaigns then start when "
                 "the executor creates them)")
    return (f"campaign.start {shown} is {_ago(late)} before {ref_name}: the campaigns start when the "
            "executor creates them")


def budget_warnings(campaigns, rules, warmup_minutes: int) -> list[str]:
    """Warnings for budgets and warm-up that Meta's documented limits say will not work as meant."""
    out: list[str] = []
    mins = rules.mm_min_daily_budget.value
    days = rules.mm_lifetime_budget_min_days.value
    over = rules.mm_daily_budget_overspend_percent.value
    for c in campaigns:
        low = mins.get(c.currency)
        if low is not None and c.daily_budget is not None and c.daily_budget < low:
            out.append(f"campaign {c.key}: daily_budget {format_money(c.daily_budget, c.currency)} is below Meta's "
                       f"documented minimum daily budget of {format_money(low, c.currency)} (rules mm_min_daily_budget; the ad "
                       "account's own minimum is GET act_<ID>/minimum_budgets): Meta may refuse the campaign")
        if low is not None and c.lifetime_budget is not None and c.lifetime_budget < low * days:
            out.append(f"campaign {c.key}: lifetime_budget {format_money(c.lifetime_budget, c.currency)} is below the "
                       f"documented minimum lifetime budget of {format_money(low * days, c.currency)} "
                       f"({format_money(low, c.currency)} a day x {days} days, "
                       "rules mm_lifetime_budget_min_days): Meta may refuse the campaign")
        if c.daily_budget is not None and over:
            out.append(f"campaign {c.key}: a daily budget is an average: one day may spend up to "
                       f"{format_money(c.daily_budget * (100 + over) // 100, c.currency)} "
                       f"(+{over} %, rules mm_daily_budget_overspend_percent), a week at most "
                       f"{format_money(c.daily_budget * rules.mm_daily_budget_weekly_multiple.value, c.currency)}")
    need = rules.mm_warmup_min_minutes.value
    if campaigns and warmup_minutes < need:
        out.append(f"schedule.warmup_minutes {warmup_minutes} is shorter than Meta's documented warm-up of "
                   f"{need} minutes (rules mm_warmup_min_minutes): the first sends will be answered "
                   "2300012/2300041 and retried")
    return out

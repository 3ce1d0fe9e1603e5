"""Campaign decisions, SQL-free: which page/topic group gets which campaign and message.

Given the audit's groups of `migrate` subscribers (page, topic, count), the pages table as
rows and a content resolver, `CampaignDecisions.decide` settles per group: excluded (and
why), or campaign + message; and per campaign: ad account, name, budget, end, cost of one
delivered message. Small (one step per page and topic), so plain Python; the per-token work
is in `plan.build` (assignment) and `plan.schedule` (batches and budgets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable

from migrator.errors import PlanError
from migrator.plan.budgets import budget_warnings, check_start
from migrator.plan.spec import PlanSpec
from migrator.timeparse import DAY

SEND_FLOOR_MAX = 4_102_444_800   # 2100-01-01T00:00:00Z, the bound ingest uses for times too

LIFETIME_DEFAULT_DAYS = 30   # Meta: end defaults to start + 30 days for a lifetime budget

# an estimator answers the cost of one delivered message (minor units) or None
Estimator = Callable[[str, str], "int | None"]
# (page_id, topic) -> (campaign index, message index), or the reason the group is not planned
GroupChoice = "tuple[int, int] | str"


@dataclass
class CampaignState:
    """A campaign being planned (mutable counters for the scheduling pass)."""

    key: str
    name: str
    page_id: str
    topic_title: str | None
    ad_account_id: str
    currency: str
    daily_budget: int | None
    lifetime_budget: int | None
    start_time: int
    end_time: int | None
    floor: int
    cost: int
    cost_source: str
    messages: list[str] = field(default_factory=list)
    sends: int = 0
    unreachable: int = 0
    first: int | None = None
    last: int | None = None
    day: int = -1          # daily budget cursor (UTC day number)
    day_count: int = 0

    def capacity(self) -> tuple[str, int | None]:
        """('lifetime'|'daily'|'none', sends the budget pays for in total / per day)."""
        return budget_capacity(self.daily_budget, self.lifetime_budget, self.cost)

    def budget_total(self) -> int | None:
        if self.lifetime_budget is not None:
            return self.lifetime_budget
        if self.daily_budget is not None:
            if self.first is None:
                return 0
            days = self.last // DAY - self.first // DAY + 1
            return self.daily_budget * days
        return None


def budget_capacity(daily: int | None, lifetime: int | None, cost: int) -> tuple[str, int | None]:
    """How many delivered messages a budget pays for (integer minor units, floor division).

    A cost of 0 is never limited. Returns ('none', None) without a budget.
    """
    if lifetime is not None:
        return "lifetime", (None if cost == 0 else lifetime // cost)
    if daily is not None:
        return "daily", (None if cost == 0 else daily // cost)
    return "none", None


def epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def check_accounts(spec: PlanSpec, rules, where: str) -> None:
    """Every ad account of the spec belongs to a business in an MM country."""
    allowed = rules.mm_business_set()
    for i, a in enumerate(spec.ad_accounts):
        if a.business_country not in allowed:
            raise PlanError(f"{where}: ad_accounts[{i}].business_country: {a.business_country} is not "
                            f"an MM business country; expected one of {', '.join(sorted(allowed))}",
                            hint="MM may be used only by businesses in these countries (rules: "
                                 "mm_business_countries)")


class CampaignDecisions:
    """The campaigns and messages of a plan, decided per page and topic group.

    `pages` rows are (page_id, name, business_country, ad_account_id, currency). After
    `decide`: `campaigns`, `messages` (dicts of PlanMessage fields), `groups` and
    `migrate_total`; warnings are appended to the list given.
    """

    def __init__(self, spec: PlanSpec, rules, where: str, as_of: date,
                 estimator: Estimator | None, warnings: list[str]):
        self.spec, self.rules, self.where, self.as_of = spec, rules, where, as_of
        self.estimator, self.warnings = estimator, warnings
        self.campaigns: list[CampaignState] = []
        self.messages: list[dict[str, Any]] = []
        self.groups: dict[tuple[str, str | None], Any] = {}   # GroupChoice per group
        self.migrate_total = 0

    def start_and_floor(self) -> tuple[int, int]:
        """The campaigns' start time and the send floor (start + warm-up, or schedule.start)."""
        policy, sched = self.spec.campaign, self.spec.schedule
        midnight = epoch(datetime.combine(self.as_of, datetime.min.time(), tzinfo=timezone.utc))
        start = epoch(policy.start) if policy.start else midnight
        check_start(start, self.as_of, self.rules, self.where)
        floor = max(start + sched.warmup_minutes * 60, epoch(sched.start) if sched.start else 0)
        if floor >= SEND_FLOOR_MAX:
            # A first send after 2100 is a typo (start = 9999-..., warmup_minutes = 2**63-1); the
            # window and ledger arithmetic would overflow dates and SQLite integers with a traceback.
            raise PlanError(f"{self.where}: schedule.start / schedule.warmup_minutes: the first send "
                            "would be after 2100-01-01",
                            hint="check schedule.start and schedule.warmup_minutes (minutes, e.g. 180)")
        return start, floor

    def decide(self, groups: list[tuple[str, str | None, int]], pages: dict[str, tuple],
               resolver, start: int, floor: int) -> None:
        """Settle every (page, topic, subscribers) group, then check contents and budgets."""
        policy, where = self.spec.campaign, self.where
        accounts = {a.id: (i, a) for i, a in enumerate(self.spec.ad_accounts)}
        by_campaign: dict[tuple[str, str | None], CampaignState] = {}
        by_message: dict[tuple[str, str], int] = {}
        campaign_index: dict[tuple[str, str | None], int] = {}
        cost_cache: dict[tuple[str, str], tuple[int, str]] = {}
        for page_id, topic, n in groups:
            self.migrate_total += n
            reason = self.page_reason(page_id, pages, accounts)
            if reason is None:
                choice = resolver.choose(page_id, topic)
                reason = choice.excluded
            if reason is not None:
                self.groups[(page_id, topic)] = reason
                continue
            _, acct = accounts[self.account_of(page_id, pages)]
            ckey = (page_id, topic if policy.per == "page_topic" else None)
            campaign = by_campaign.get(ckey)
            if campaign is None:
                campaign = self.new_campaign(len(by_campaign) + 1, page_id, ckey[1], pages, acct, start,
                                             floor, cost_cache)
                by_campaign[ckey] = campaign
                campaign_index[ckey] = len(self.campaigns)
                self.campaigns.append(campaign)
            text = json.dumps(choice.message, sort_keys=True, separators=(",", ":"))
            mi = by_message.get((campaign.key, text))
            if mi is None:
                mi = by_message[(campaign.key, text)] = len(self.messages)
                self.messages.append({"key": f"m{mi + 1}", "campaign_key": campaign.key,
                                      "content_id": choice.content_id, "source": choice.source,
                                      "outcome": choice.outcome, "message": choice.message,
                                      "sends": 0})
                campaign.messages.append(f"m{mi + 1}")
            self.groups[(page_id, topic)] = (campaign_index[ckey], mi)
        if resolver.errors:
            resolver.raise_errors()
        for i in resolver.unused_entries():
            self.warnings.append(f"{where}: content[{i}] was not used (no planned subscriber needed it)")
        lossy = sum(1 for m in self.messages if m["outcome"] == "lossy" and m["source"] == "converted")
        if lossy:
            self.warnings.append(f"{lossy} message(s) are lossy conversions: review contents.changes")
        self.check_budgets()
        self.warnings.extend(budget_warnings(self.campaigns, self.rules, self.spec.schedule.warmup_minutes))

    def account_of(self, page_id: str, pages) -> str | None:
        """The page's ad account id (without act_): the spec's mapping, else the pages table."""
        ps = self.spec.pages.get(page_id)
        if ps is not None and ps.ad_account:
            return ps.ad_account
        row = pages.get(page_id)
        acct = row[3] if row else None
        if acct and acct.startswith("act_"):
            acct = acct[4:]
        return acct or None

    def page_reason(self, page_id: str, pages, accounts) -> str | None:
        """Why none of the page's subscribers is planned, or None."""
        ps = self.spec.pages.get(page_id)
        if ps is not None and ps.exclude:
            return "page_excluded"
        acct = self.account_of(page_id, pages)
        if acct is None:
            return "no_ad_account"
        if acct not in accounts:
            return "ad_account_not_in_spec"
        return None

    def new_campaign(self, n: int, page_id: str, topic: str | None, pages, acct, start: int,
                     floor: int, cost_cache) -> CampaignState:
        spec, policy = self.spec, self.spec.campaign
        ps = spec.pages.get(page_id)
        daily, lifetime = policy.daily_budget, policy.lifetime_budget
        if ps is not None and (ps.daily_budget is not None or ps.lifetime_budget is not None):
            daily, lifetime = ps.daily_budget, ps.lifetime_budget
        end = epoch(policy.end) if policy.end else (
            start + LIFETIME_DEFAULT_DAYS * DAY if lifetime is not None else None)
        row = pages.get(page_id)
        page_name = (row[1] if row and row[1] else page_id)
        key = f"c{n}"
        name = policy.name.format(page_id=page_id, page_name=page_name,
                                  topic=topic if topic is not None else "all topics",
                                  ad_account=acct.id, as_of=self.as_of.isoformat(), key=key)
        if row and row[4] and row[4].upper() != acct.currency:
            self.warnings.append(f"page {page_id}: pages.currency {row[4]} differs from ad account "
                                 f"{acct.id} currency {acct.currency}; budgets are in {acct.currency}")
        cost, source = self.cost(acct, page_id, cost_cache)
        return CampaignState(key=key, name=name, page_id=page_id, topic_title=topic,
                             ad_account_id=acct.id, currency=acct.currency, daily_budget=daily,
                             lifetime_budget=lifetime, start_time=start, end_time=end,
                             floor=floor, cost=cost, cost_source=source)

    def cost(self, acct, page_id: str, cache) -> tuple[int, str]:
        """The cost of one delivered message and where it came from ('estimate' | 'spec')."""
        k = (acct.id, page_id)
        if k in cache:
            return cache[k]
        if self.spec.cost.source == "estimate" and self.estimator is not None:
            est = self.estimator(acct.id, page_id)
            if est is not None:
                cache[k] = (int(est), "estimate")
                return cache[k]
            self.warnings.append(f"no delivery estimate for ad account {acct.id}, page {page_id}: "
                                 "used the spec's cost")
        cost = acct.cost_per_message if acct.cost_per_message is not None else self.spec.cost.per_message
        if cost is None:
            i = [a.id for a in self.spec.ad_accounts].index(acct.id)
            raise PlanError(f"{self.where}: ad_accounts[{i}].cost_per_message: missing; expected the "
                            "cost of one delivered message in minor units (or cost.per_message)",
                            hint="Meta bills per delivered message; the plan needs a cost to check budgets")
        cache[k] = (cost, "spec")
        return cache[k]

    def check_budgets(self) -> None:
        if self.spec.allow_unbounded or not self.rules.plan_budget_required.value:
            return
        for c in self.campaigns:
            if c.daily_budget is None and c.lifetime_budget is None:
                raise PlanError(
                    f"{self.where}: campaign: campaign {c.key} (page {c.page_id}) has no budget; expected "
                    f"campaign.daily_budget or campaign.lifetime_budget (minor units), "
                    f"pages.\"{c.page_id}\".daily_budget / lifetime_budget, or allow_unbounded = true",
                    hint="the rules (plan_budget_required) say a plan always sets a budget")
        for c in self.campaigns:
            kind, cap = c.capacity()
            if cap == 0:
                self.warnings.append(f"campaign {c.key}: its {kind} budget is below the cost of one "
                                     "message, it can reach no one")

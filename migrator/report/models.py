"""Typed models of the three reports: what the HTML shows is exactly what `--json` prints.

Each report is built from the workspace into one of these models (build_*.py) and then
rendered (render.py); the HTML also embeds the model as JSON, so a report file carries its
own data. Nothing here may hold a subscription token, a PSID or an access token: people
are counted, and where one must be named it is by `short_hash`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleSource(_M):
    """One rules entry in force: its value, where it was read and when it was checked."""

    name: str
    value: str
    sources: list[str]
    verified: str
    origin: str


class Provenance(_M):
    """Where a report's numbers come from (the header of every report)."""

    migrator_version: str
    generated_at: str             # ISO 8601 UTC
    as_of: str | None             # the audit's as-of date
    audit_run_id: int | None
    workspace: str                # file name only
    rules_version: str | None
    rules_fingerprint: str | None
    rules_note: str | None        # e.g. the rules shown are not the ones the audit used
    rules: list[RuleSource]
    plan_id: str | None
    plan_fingerprint: str | None
    plan_note: str | None = None  # e.g. the plan was made from an older audit run


class Term(_M):
    term: str
    meaning: str


class Money(_M):
    """An amount as every surface shows it (migrator.money): minor units, text, and what it rests on."""

    minor: int
    currency: str
    text: str                     # e.g. "USD 0.18" (the currency's own decimals)
    basis: Literal["estimated", "accepted", "delivered", "budget", "value"]


class PageLoss(_M):
    """What one page loses on the deadline if nothing is done."""

    page_id: str
    name: str | None
    subscribers: int              # still to move + on RN only until it stops + lost
    to_move: int
    at_risk: int
    lost: int
    undecided: int                # may be lost too (country unclear): counted apart
    value: Money | None           # subscribers x value_per_subscriber, when the plan spec states it


class Countdown(_M):
    """For an as-of before RN's discontinuation: what is lost on that date if nothing is done."""

    deadline: str
    days_left: int
    subscribers: int
    undecided: int
    value: list[Money]            # one per currency of value_per_subscriber (usually one)
    value_note: str | None        # why there is no value (no plan, no value_per_subscriber in its spec)
    pages: list[PageLoss]         # most subscribers first; pages that lose nothing are left out


# --- audit -------------------------------------------------------------------------------

class VerdictCount(_M):
    verdict: str
    label: str
    tokens: int
    meaning: str


class FindingRow(_M):
    code: str
    scope: str
    severity: str
    count: int
    explanation: str
    remedy: str
    sources: list[str]


class RegionRow(_M):
    """Subscriptions per recipient country, by how the country was known."""

    country: str
    explicit: int
    inferred: int                 # from the time zone
    from_errors: int              # learned from an MM send error


class ContentChange(_M):
    code: str
    detail: str
    mm_error_code: int | None = None


class ContentRow(_M):
    content_id: int
    content_hash: str
    page_id: str | None
    page_name: str | None
    topic_title: str | None
    key: str | None
    source: str
    uses: int
    outcome: str | None
    rn_message: str               # pretty JSON of the RN message
    mm_message: str | None        # pretty JSON of the converted MM message
    changes: list[ContentChange]
    problems: list[ContentChange]


class TimelineEvent(_M):
    name: str
    label: str
    date: str
    days_from_as_of: int          # negative: before the as-of date
    note: str | None
    sources: list[str]


class AuditReport(_M):
    kind: Literal["audit"] = "audit"
    provenance: Provenance
    countdown: Countdown | None = None
    moved: int = 0                # of the migrate verdicts: an MM send accepted since (the send ledger)
    delivered: int = 0
    read: int = 0
    pages_done: int = 0           # pages whose planned sends all have a final outcome
    tokens: int
    recipients: int
    verdicts: list[VerdictCount]
    pages: dict[str, int]
    contents: dict[str, int]
    region_sources: dict[str, int]
    regions: list[RegionRow]
    regions_other: RegionRow | None   # countries beyond the chart's top rows, summed
    findings: list[FindingRow]
    contents_total: int
    content_rows: list[ContentRow]    # problem content first, then most used; capped
    timeline: list[TimelineEvent]
    rejects: int
    options: dict[str, object]
    glossary: list[Term]


# --- readiness ---------------------------------------------------------------------------

class ActionItem(_M):
    who: Literal["partner", "business", "Meta"]
    code: str
    what: str
    count: int | None = None      # how many subscriptions (or messages, see `unit`) the action is about
    # which figure of the page's row `count` is, so the two can never disagree: a key of the row's
    # `subscribers` (e.g. "move", "lost", "daily_limited"), or for messages a key of the row itself
    # ("approvals_total")
    counts: str | None = None
    unit: Literal["subscriptions", "messages"] = "subscriptions"


class ContentApproval(_M):
    """One RN message of the page that cannot go to MM as it is: what it is, why, and what the plan does."""

    content_hash: str
    topic: str | None
    first_words: str              # the start of its text (or what it is: "an audio file", "3 cards")
    outcome: str                  # needs_edit | unsupported
    why: list[str]                # each problem, in words a business can act on
    detail: list[str] = []        # the converter's own wording (partner-facing; not in a business file)
    uses: int
    plan: str | None              # what the latest plan does instead ("sends ...", "leaves out ..."), if any


class Subscribers(_M):
    """Subscriptions by what happens to them. The audit's verdicts, read against the send ledger:
    a `migrate` subscription whose person got an MM send accepted has *moved* (it no longer counts
    in `move`); `delivered` and `read` are the moved ones with a delivery / read receipt."""

    move: int                     # verdict migrate, not moved yet: still to move to MM
    moved: int = 0                # verdict migrate, an MM send to the person accepted (exec_sends 'sent')
    delivered: int = 0            # of `moved`: Meta reported the message delivered
    read: int = 0                 # of `moved`: Meta reported it read
    stay: int                     # stay_on_rn: RN keeps working for them
    at_risk: int                  # of `stay`: on RN until it stops for their region, then lost
    lost: int                     # blocked: neither RN nor MM can reach them
    opted_out: int                # already stopped: never messaged
    undecided: int                # review: the region is not known well enough
    total: int
    # subsets the actions count (each is also a figure of the row, so an action's count is one)
    daily_limited: int = 0        # of `stay`: daily subscriptions RN now limits to one message per 48 h
    expired: int = 0              # of `lost`: tokens Meta refused as expired (need a new opt-in)
    region_conflict: int = 0      # of `move` + `undecided`: partner country data that Meta contradicted
    needs_country: int = 0        # of `undecided`: the recipient's country is unclear (needs-country.csv)
    # of `move`: another plan's send to the person is unsettled (in flight, or unknown): the latest
    # plan skips them, that plan's recovery (receipts, --resend-unknown) moves them or frees them
    held_by_another_plan: int = 0


class CostEstimate(_M):
    plan_id: str
    currency: str
    sends: int
    estimated_cost_minor: int
    estimated_cost: str           # formatted in the currency's major unit
    budget_total_minor: int | None
    budget_total: str | None
    unreachable_by_budget: int
    # from the send ledger once the plan ran (None before): what Meta accepted and delivered so far,
    # at the plan's cost per message, as `status` and the execution report count it
    sent: int | None = None
    accepted_cost_minor: int | None = None
    accepted_cost: str | None = None
    delivered: int | None = None
    delivered_cost_minor: int | None = None
    delivered_cost: str | None = None


class PreflightCheck(_M):
    check: str
    title: str
    who: str
    what: str


class PagePreflight(_M):
    """The page's state in the latest `migrator preflight` (pass | fail | unknown) and what failed."""

    state: Literal["pass", "fail", "unknown"]
    checked_at: str               # UTC, YYYY-MM-DD HH:MM
    failed: list[PreflightCheck]
    unknown: list[str]            # titles of readable checks left unknown


class Cutover(_M):
    """The page's sends in the latest plan, from the send ledger (exec_sends)."""

    plan_id: str | None
    # stopped: nothing left to try, but some sends failed or were skipped for a cause the partner
    # can fix (the campaign stopped, the payload refused): not done, and not under way either
    state: Literal["not_planned", "not_started", "in_progress", "stopped", "done"]
    planned: int                  # sends of the plan for this page
    sent: int                     # accepted by Meta
    delivered: int
    read: int
    failed: int
    skipped: int
    unknown: int
    to_send: int                  # not tried yet (planned or in flight)
    already_reached: int = 0      # of to_send: people an earlier plan's send already reached
    # of to_send: people another plan's unsettled send (in flight or unknown) holds: the executor
    # skips them as it does the reached ones, and that plan's recovery (receipts, --resend-unknown)
    # settles them; to_send - already_reached - held_by_another_plan is what this plan still sends
    held_by_another_plan: int = 0
    held_by_plans: list[str] = []   # the plans holding them (plan ids; a business file names none)


class PageReadiness(_M):
    page_id: str
    name: str | None
    business_country: str | None
    # the audit's status, or "done" once every planned subscriber of the page moved (cutover.state)
    status: Literal["done", "ready", "needs_action", "blocked"]
    audit_status: Literal["ready", "needs_action", "blocked"]
    reasons: list[str]
    deadline: str | None          # the date that matters for this page (RN stops), if any
    deadline_label: str | None
    days_to_deadline: int | None  # negative: passed
    subscribers: Subscribers
    actions: list[ActionItem]
    approvals: list[ContentApproval] = []   # the messages the business must approve (or replace)
    approvals_total: int = 0      # how many messages need approval (`approvals` lists the most used)
    approvals_note: str | None = None       # why none are asked for (blocked page, everyone moved)
    cost: list[CostEstimate]      # one per currency (usually one), when a plan exists
    preflight: PagePreflight | None = None   # when `migrator preflight` was run for this page
    cutover: Cutover | None = None
    loss: PageLoss | None = None  # what is lost on the deadline if nothing is done (before it only)


class ReadinessReport(_M):
    kind: Literal["readiness"] = "readiness"
    provenance: Provenance
    countdown: Countdown | None = None
    page_filter: str | None
    statuses: dict[str, int]
    subscribers: Subscribers
    deadline: str | None
    days_to_deadline: int | None
    pages: list[PageReadiness]    # blocked first, then needs_action, then ready; by size
    pages_total: int              # pages in the estate (or the filter); `pages` may list fewer
    has_plan: bool = False        # a plan exists (a business file carries no plan id to tell it by)
    glossary: list[Term]

    def trimmed(self, n: int) -> "ReadinessReport":
        """The same report listing only the first (most urgent) `n` pages: what the HTML embeds."""
        return self if len(self.pages) <= n else self.model_copy(update={"pages": self.pages[:n]})


# --- execution ---------------------------------------------------------------------------

class Counts(_M):
    planned: int
    sent: int | None = None       # None: no execution ledger in this workspace
    skipped: int | None = None
    failed: int | None = None
    unknown: int | None = None
    delivered: int | None = None
    read: int | None = None


class CampaignExec(_M):
    campaign_key: str
    name: str
    page_id: str
    topic_title: str | None
    currency: str
    counts: Counts
    cost_per_message_minor: int
    estimated_cost_minor: int
    estimated_cost: str
    budget_total_minor: int | None
    budget_total: str | None
    spent_minor: int | None       # delivered x cost per message (basis "delivered")
    spent: str | None
    accepted_cost_minor: int | None = None   # sent (accepted by Meta) x cost per message (basis "accepted")
    accepted_cost: str | None = None
    unreachable_by_budget: int


class BatchExec(_M):
    batch: int
    day: str
    not_before: str               # ISO UTC
    counts: Counts


class ErrorRow(_M):
    code: str
    count: int
    meaning: str
    error_class: str | None


class ThroughputPoint(_M):
    at: str                       # ISO UTC start of the bucket
    planned: int
    sent: int


class RunRow(_M):
    """One run of the executor for this plan (exec_runs)."""

    run_id: int
    mode: str                     # execute | dry_run
    started_at: str
    finished_at: str | None
    outcome: str                  # finished | interrupted | killed | refused | resumed | running | ...
    outcome_label: str            # in words
    resumed: bool                 # a later run of the same plan picked up after this one
    sent: int | None = None       # from the run's summary, when recorded


class ExecutionReport(_M):
    kind: Literal["execution"] = "execution"
    provenance: Provenance
    countdown: Countdown | None = None
    runs: list[RunRow] = []
    plan_id: str
    plan_name: str
    plan_created_at: str
    ledger: bool                  # False: the workspace has no execution ledger for this plan
    ledger_note: str | None
    totals: Counts
    excluded: dict[str, int]      # planner exclusions by reason
    campaigns: list[CampaignExec]
    batches: list[BatchExec]      # may list fewer than batches_total (the HTML: the first ones)
    batches_total: int
    errors: list[ErrorRow]
    throughput: list[ThroughputPoint]
    throughput_bucket: str        # hour | day
    next_steps: list[str]
    glossary: list[Term]

    def trimmed(self, n: int) -> "ExecutionReport":
        """The same report listing only the first `n` batches: what the HTML embeds."""
        return self if len(self.batches) <= n else self.model_copy(update={"batches": self.batches[:n]})

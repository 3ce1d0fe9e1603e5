"""Spec + workspace -> saved plan: campaigns, messages, per-token sends, batches, costs.

Decisions are small pure functions (campaign grouping, budget capacity, batch days); the
per-token work is two streaming passes over SQLite with flat memory:

1. (one INSERT ... SELECT) every primary `migrate` token (view v_audit_migrate) gets its
   campaign and message and `not_before` = the first moment inside its local send window
   at or after the later of the send floor (campaign start + warm-up, or schedule.start)
   and `next_eligible_at`, looked up in a small table of each zone's windows;
2. in that order, tokens fill batches (batch_size, at most batches_per_day batches per UTC
   day; a later batch moves its sends to the next day's window) and campaign budgets
   (lifetime: total capacity; daily: per UTC day, then the next day). Tokens the budget
   cannot reach before the campaign end are excluded as over_budget. When no budget or
   end binds this is set-based SQL (`_schedule_fast`); otherwise a sequential pass over
   the sorted rows (`_schedule_slow`); both give the same plan when nothing binds.
send_id numbers sends in batch order; a row's not_before can be later than its batch's
day only when its campaign's daily budget pushed it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

from migrator.errors import PlanError
from migrator.plan.budgets import budget_warnings, check_start
from migrator.plan.content import ContentResolver, load_contents, load_usage
from migrator.audit import latest_run
from migrator.plan.fingerprint import input_fingerprints, plan_fingerprint, sends_digest
from migrator.plan.model import PlanBatch, PlanCampaign, PlanMessage, SavedPlan, write_plan
from migrator.plan.spec import PlanSpec, load_spec, parse_window
from migrator.plan.spec_source import record_spec_source
from migrator.plan.windows import DAY, Windows

LIFETIME_DEFAULT_DAYS = 30   # Meta: end defaults to start + 30 days for a lifetime budget
CHUNK = 20_000
TEMP_TABLES = ("_plan_src", "_plan_groups", "_plan_zones", "_plan_windows", "_plan_ord", "_plan_ends",
               "_plan_old")
HORIZON_DAYS = 400           # tokens first eligible later than this after the floor are not planned
AUDIT_REASONS = ("stay_on_rn", "blocked", "opted_out", "review")

# an estimator answers the cost of one delivered message (minor units) or None
Estimator = Callable[[str, str], "int | None"]


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


def _day_str(day: int) -> str:
    return datetime.fromtimestamp(day * DAY, timezone.utc).date().isoformat()


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def _today(clock: Callable[[], float]) -> date:
    return datetime.fromtimestamp(clock(), timezone.utc).date()


def make_plan(ws, spec_path: str | Path, *, as_of: date | None = None, rules_path: str | None = None,
              out: str | Path | None = None, clock: Callable[[], float] = time.time,
              estimator: Estimator | None = None) -> SavedPlan:
    """Load the spec and rules, build and store the plan, write it to `out` if given."""
    from migrator.rules import load_rules

    spec = load_spec(spec_path)
    rules = load_rules(rules_path)
    plan = build_plan(ws, spec, as_of=as_of, rules=rules, spec_path=str(spec_path),
                      rules_path=rules_path, clock=clock, estimator=estimator)
    record_spec_source(ws, plan, spec_path)
    if out is not None:
        write_plan(plan, out)
    return plan


def build_plan(ws, spec: PlanSpec, *, as_of: date | None = None, rules=None,
               spec_path: str | None = None, rules_path: str | None = None,
               clock: Callable[[], float] = time.time,
               estimator: Estimator | None = None) -> SavedPlan:
    """Build the plan for `spec` against workspace `ws`, store it there and return it."""
    from migrator.rules import load_rules

    rules = rules or load_rules(rules_path)
    where = spec_path or "<spec>"
    conn = ws.conn
    as_of = as_of or _today(clock)
    run = latest_run(ws)
    if run is None:
        raise PlanError("the workspace has no finished audit: the planner plans the audit's "
                        "`migrate` subscribers", hint="run `migrator audit` first")
    _check_accounts(spec, rules, where)
    try:
        with ws.transaction():   # inputs, snapshot and plan rows from one consistent state
            inputs = input_fingerprints(ws, spec, rules)
            fingerprint = plan_fingerprint(inputs, as_of.isoformat())
            plan_id = "p" + fingerprint[:12]
            warnings: list[str] = []
            if run.as_of != as_of.isoformat():
                warnings.append(f"the audit is as of {run.as_of}, the plan as of {as_of.isoformat()}")
            b = _Builder(ws, spec, rules, where, as_of, plan_id, clock, estimator, warnings)
            b.snapshot()
            b.prepare()
            for t in ("plans", "plan_campaigns", "plan_messages", "plan_batches", "plan_sends",
                      "plan_excluded"):
                conn.execute(f"DELETE FROM {t} WHERE plan_id = ?", (plan_id,))
            b.pass_assign()
            b.pass_schedule()
            plan = b.finish(inputs, fingerprint, run, spec_path, rules_path)
            conn.execute(
                "INSERT INTO plans (plan_id, name, created_at, as_of, fingerprint, inputs, spec_path,"
                " rules_version, sends, sends_digest, body) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (plan.plan_id, plan.name, plan.created_at, plan.as_of, plan.fingerprint,
                 json.dumps(plan.inputs), spec_path, plan.rules_version, plan.sends,
                 plan.sends_digest, plan.to_file_text()))
    finally:
        for t in TEMP_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS temp.{t}")
    return plan


def _check_accounts(spec: PlanSpec, rules, where: str) -> None:
    allowed = rules.mm_business_set()
    for i, a in enumerate(spec.ad_accounts):
        if a.business_country not in allowed:
            raise PlanError(f"{where}: ad_accounts[{i}].business_country: {a.business_country} is not "
                            f"an MM business country; expected one of {', '.join(sorted(allowed))}",
                            hint="MM may be used only by businesses in these countries (rules: "
                                 "mm_business_countries)")


class _Builder:
    def __init__(self, ws, spec: PlanSpec, rules, where, as_of, plan_id, clock, estimator, warnings):
        self.conn = ws.conn
        self.spec, self.rules, self.where, self.as_of = spec, rules, where, as_of
        self.plan_id, self.clock, self.estimator, self.warnings = plan_id, clock, estimator, warnings
        self.excluded: dict[str, int] = {}
        self.campaigns: list[CampaignState] = []
        self.messages: list[dict[str, Any]] = []
        self.groups: dict[tuple[str, str | None], tuple[int, int] | str] = {}
        self.batches: list[dict[str, Any]] = []
        self.sends = 0
        self.migrate_total = 0

    # -- decisions per page and topic (small) --------------------------------------------

    def snapshot(self) -> None:
        """One scan of the audit's primary migrate tokens into a compact temp table."""
        for t in TEMP_TABLES:
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{t}")
        self.conn.execute(
            "CREATE TEMP TABLE _plan_src AS SELECT m.token_id AS token_id, m.page_id AS page_id,"
            " m.topic_title AS topic, m.timezone AS tz, t.next_eligible_at AS nea "
            "FROM v_audit_migrate m JOIN tokens t ON t.id = m.token_id")

    def prepare(self) -> None:
        spec, conn, where = self.spec, self.conn, self.where
        pages = {r[0]: r for r in conn.execute(
            "SELECT page_id, name, business_country, ad_account_id, currency FROM pages")}
        accounts = {a.id: (i, a) for i, a in enumerate(spec.ad_accounts)}
        groups = conn.execute("SELECT page_id, topic, COUNT(*) FROM _plan_src "
                              "GROUP BY page_id, topic ORDER BY page_id, topic").fetchall()
        resolver = ContentResolver(spec, load_contents(conn), where=where, usage=load_usage(conn))
        policy = spec.campaign
        start = _epoch(policy.start) if policy.start else _epoch(
            datetime.combine(self.as_of, datetime.min.time(), tzinfo=timezone.utc))
        check_start(start, self.as_of, self.rules, where)   # plan/budgets.py (issue 16.7)
        sched = spec.schedule
        floor = max(start + sched.warmup_minutes * 60, _epoch(sched.start) if sched.start else 0)
        self.floor = floor
        self.window = Windows(*parse_window(sched.window), default_zone=sched.default_timezone,
                              origin=floor)
        by_campaign: dict[tuple[str, str | None], CampaignState] = {}
        by_message: dict[tuple[str, str], int] = {}
        camp_index: dict[tuple[str, str | None], int] = {}
        cost_cache: dict[tuple[str, str], tuple[int, str]] = {}
        for page_id, topic, n in groups:
            self.migrate_total += n
            reason = self._page_reason(page_id, pages, accounts)
            if reason is None:
                choice = resolver.choose(page_id, topic)
                reason = choice.excluded
            if reason is not None:
                self.groups[(page_id, topic)] = reason
                continue
            _, acct = accounts[self._account_of(page_id, pages)]
            ckey = (page_id, topic if policy.per == "page_topic" else None)
            camp = by_campaign.get(ckey)
            if camp is None:
                camp = self._campaign(len(by_campaign) + 1, page_id, ckey[1], pages, acct, start,
                                      floor, cost_cache)
                by_campaign[ckey] = camp
                camp_index[ckey] = len(self.campaigns)
                self.campaigns.append(camp)
            text = json.dumps(choice.message, sort_keys=True, separators=(",", ":"))
            mi = by_message.get((camp.key, text))
            if mi is None:
                mi = by_message[(camp.key, text)] = len(self.messages)
                self.messages.append({"key": f"m{mi + 1}", "campaign_key": camp.key,
                                      "content_id": choice.content_id, "source": choice.source,
                                      "outcome": choice.outcome, "message": choice.message,
                                      "sends": 0})
                camp.messages.append(f"m{mi + 1}")
            self.groups[(page_id, topic)] = (camp_index[ckey], mi)
        if resolver.errors:
            resolver.raise_errors()
        for i in resolver.unused_entries():
            self.warnings.append(f"{where}: content[{i}] was not used (no planned subscriber needed it)")
        lossy = sum(1 for m in self.messages if m["outcome"] == "lossy" and m["source"] == "converted")
        if lossy:
            self.warnings.append(f"{lossy} message(s) are lossy conversions: review contents.changes")
        self._check_budgets()
        self.warnings.extend(budget_warnings(self.campaigns, self.rules, self.spec.schedule.warmup_minutes))

    def _account_of(self, page_id: str, pages) -> str | None:
        ps = self.spec.pages.get(page_id)
        if ps is not None and ps.ad_account:
            return ps.ad_account
        row = pages.get(page_id)
        acct = row[3] if row else None
        if acct and acct.startswith("act_"):
            acct = acct[4:]
        return acct or None

    def _page_reason(self, page_id: str, pages, accounts) -> str | None:
        ps = self.spec.pages.get(page_id)
        if ps is not None and ps.exclude:
            return "page_excluded"
        acct = self._account_of(page_id, pages)
        if acct is None:
            return "no_ad_account"
        if acct not in accounts:
            return "ad_account_not_in_spec"
        return None

    def _campaign(self, n: int, page_id: str, topic: str | None, pages, acct, start: int,
                  floor: int, cost_cache) -> CampaignState:
        spec, policy = self.spec, self.spec.campaign
        ps = spec.pages.get(page_id)
        daily, lifetime = policy.daily_budget, policy.lifetime_budget
        if ps is not None and (ps.daily_budget is not None or ps.lifetime_budget is not None):
            daily, lifetime = ps.daily_budget, ps.lifetime_budget
        end = _epoch(policy.end) if policy.end else (
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
        cost, source = self._cost(acct, page_id, cost_cache)
        return CampaignState(key=key, name=name, page_id=page_id, topic_title=topic,
                             ad_account_id=acct.id, currency=acct.currency, daily_budget=daily,
                             lifetime_budget=lifetime, start_time=start, end_time=end,
                             floor=floor, cost=cost, cost_source=source)

    def _cost(self, acct, page_id: str, cache) -> tuple[int, str]:
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

    def _check_budgets(self) -> None:
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

    # -- pass 1 (set-based): campaign/message and first in-window moment per token -------

    def pass_assign(self) -> None:
        """Fill temp._plan_ord(send_id, token_id, c, m, z, nb) in (not_before, token_id) order.

        Groups, resolved zones and each zone's send windows (UTC, over the horizon the
        tokens need) are small temp tables; the per-token `not_before` is an index seek.
        """
        conn, pid = self.conn, self.plan_id
        conn.execute("CREATE TEMP TABLE _plan_groups (gkey TEXT PRIMARY KEY, c INTEGER, m INTEGER,"
                     " reason TEXT, floor INTEGER, end_at INTEGER)")
        conn.execute("CREATE TEMP TABLE _plan_zones (tz TEXT PRIMARY KEY, z INTEGER NOT NULL)")
        conn.execute("CREATE TEMP TABLE _plan_windows (z INTEGER, close INTEGER, open INTEGER,"
                     " PRIMARY KEY (z, close)) WITHOUT ROWID")
        rows = []
        for (page_id, topic), g in self.groups.items():
            gkey = page_id + "\x1f" + ("\x1e" if topic is None else topic)
            if g.__class__ is str:
                rows.append((gkey, None, None, g, None, None))
            else:
                c = self.campaigns[g[0]]
                rows.append((gkey, g[0], g[1], None, c.floor, c.end_time))
        conn.executemany("INSERT INTO _plan_groups VALUES (?,?,?,?,?,?)", rows)
        if any(r[3] is not None for r in rows):
            conn.execute(
                "INSERT INTO plan_excluded (plan_id, token_id, reason, campaign_key) "
                "SELECT ?, s.token_id, g.reason, NULL FROM _plan_groups g JOIN _plan_src s "
                "ON s.page_id || char(31) || IFNULL(s.topic, char(30)) = g.gkey "
                "WHERE g.reason IS NOT NULL", (pid,))
        for reason, n in conn.execute("SELECT reason, COUNT(*) FROM plan_excluded WHERE plan_id = ? "
                                      "GROUP BY reason", (pid,)):
            self.excluded[reason] = n
        if not self.campaigns:
            return
        # zones: every distinct token zone, resolved (unknown -> the spec's default)
        w = self.window
        names: list[str] = []
        index: dict[str, int] = {}
        zrows = []
        for (tz,) in conn.execute("SELECT DISTINCT tz FROM _plan_src"):
            z = w.zone(tz)
            if z not in index:
                index[z] = len(names)
                names.append(z)
            zrows.append(("" if tz is None else tz, index[z]))
        if w.default_zone not in index:
            index[w.default_zone] = len(names)
            names.append(w.default_zone)
        conn.executemany("INSERT OR REPLACE INTO _plan_zones VALUES (?,?)", zrows)
        self.zone_names = names
        default_z = index[w.default_zone]
        # horizon: from the earliest floor to the latest first-eligible moment (+2 days)
        lo = min(c.floor for c in self.campaigns)
        hi = conn.execute("SELECT MAX(nea) FROM _plan_src").fetchone()[0] or 0
        hi = min(max(hi, lo), lo + HORIZON_DAYS * DAY) + 2 * DAY
        self._add_windows(lo, hi)
        cap_hit = conn.execute("SELECT 1 FROM _plan_src WHERE nea >= ? LIMIT 1",
                               (lo + HORIZON_DAYS * DAY,)).fetchone() is not None
        src = (
            "SELECT x.token_id AS token_id, x.c AS c, x.m AS m, x.z AS z, x.end_at AS end_at, "
            " (SELECT MAX(w.open, x.e) FROM _plan_windows w WHERE w.z = x.z AND w.close > x.e "
            "  ORDER BY w.close LIMIT 1) AS nb "
            "FROM (SELECT s.token_id AS token_id, g.c AS c, g.m AS m, g.end_at AS end_at, "
            "       IFNULL(zz.z, :z) AS z, MAX(g.floor, IFNULL(s.nea, 0)) AS e "
            "      FROM _plan_src s "
            "      JOIN _plan_groups g ON g.gkey = s.page_id || char(31) || IFNULL(s.topic, char(30)) "
            "      LEFT JOIN _plan_zones zz ON zz.tz = IFNULL(s.tz, '') "
            "      WHERE g.reason IS NULL) x")
        keys = [c.key for c in self.campaigns]
        # sends in (not_before, token_id) order: send_id is the rank; nb0 keeps the first value
        # (a token beyond the window horizon has no not_before: it sorts last, then goes)
        conn.execute("CREATE TEMP TABLE _plan_ord (send_id INTEGER PRIMARY KEY, token_id INTEGER,"
                     " c INTEGER, m INTEGER, z INTEGER, nb INTEGER, nb0 INTEGER)")
        conn.execute(
            "INSERT INTO _plan_ord (token_id, c, m, z, nb, nb0) "
            f"SELECT token_id, c, m, z, nb, nb FROM ({src}) ORDER BY nb IS NULL, nb, token_id",
            {"z": default_z})
        ends = [(i, c.end_time) for i, c in enumerate(self.campaigns) if c.end_time is not None]
        if not (cap_hit or ends):
            return
        conn.execute("CREATE TEMP TABLE _plan_ends (c INTEGER PRIMARY KEY, end_at INTEGER)")
        conn.executemany("INSERT INTO _plan_ends VALUES (?, ?)", ends)
        late = [(pid, token_id, "after_campaign_end" if nb is not None else "eligible_too_late", keys[ci])
                for token_id, ci, nb in conn.execute(
                    "SELECT o.token_id, o.c, o.nb FROM _plan_ord o LEFT JOIN _plan_ends e ON e.c = o.c "
                    "WHERE o.nb IS NULL OR o.nb >= e.end_at")]
        conn.execute("DROP TABLE _plan_ends")
        if late:
            self._exclude(late, self.excluded)
            # renumber without them (rare: only when some sends fall after their campaign's end)
            conn.execute("ALTER TABLE _plan_ord RENAME TO _plan_old")
            conn.execute("CREATE TEMP TABLE _plan_ord (send_id INTEGER PRIMARY KEY, token_id INTEGER,"
                         " c INTEGER, m INTEGER, z INTEGER, nb INTEGER, nb0 INTEGER)")
            conn.execute("INSERT INTO _plan_ord (token_id, c, m, z, nb, nb0) SELECT token_id, c, m, z, nb, nb0"
                         " FROM _plan_old o WHERE o.nb IS NOT NULL AND NOT EXISTS (SELECT 1 FROM"
                         " plan_excluded x WHERE x.plan_id = ? AND x.token_id = o.token_id) ORDER BY send_id",
                         (pid,))
            conn.execute("DROP TABLE _plan_old")

    def _exclude(self, rows: list[tuple], counts: dict[str, int]) -> None:
        """Store (plan_id, token_id, reason, campaign_key) rows and count them by reason."""
        self.conn.executemany("INSERT INTO plan_excluded (plan_id, token_id, reason, campaign_key) "
                              "VALUES (?,?,?,?)", rows)
        for r in rows:
            counts[r[2]] = counts.get(r[2], 0) + 1
        rows.clear()

    def _add_windows(self, lo: int, hi: int) -> None:
        """Make temp._plan_windows cover every zone's windows from `lo` to past `hi`."""
        rows = []
        for z, name in enumerate(self.zone_names):
            for o, c in self.window.windows(name, lo, hi):
                rows.append((z, c, o))
        self.conn.executemany("INSERT OR IGNORE INTO _plan_windows VALUES (?,?,?)", rows)

    # -- pass 2: batches and budgets in send order ---------------------------------------

    def pass_schedule(self, *, fast: bool = True) -> None:
        """Number the sends, cut batches, apply budgets; set-based unless a budget binds."""
        if not self.campaigns:
            self.sends = 0
        elif not (fast and self._schedule_fast()):
            self._schedule_slow()
        self.sends_digest = sends_digest(self.conn, self.plan_id)

    def _batch_days(self, first_nbs: list[int]) -> list[int]:
        """UTC day of each batch from its first send: at most batches_per_day per day."""
        per_day = self.spec.schedule.batches_per_day
        days: list[int] = []
        bday, on_day = -1, 0
        for nb in first_nbs:
            d = nb // DAY
            if not days or d > bday:
                nd, on_day = d, 1
            elif on_day < per_day:
                nd, on_day = bday, on_day + 1
            else:
                nd, on_day = bday + 1, 1
            days.append(nd)
            bday = nd
        return days

    def _schedule_fast(self) -> bool:
        """All in SQL when no budget or campaign end binds (checked after batching).

        Returns False, with nothing written, when the sequential pass is needed.
        """
        conn, size, pid = self.conn, self.spec.schedule.batch_size, self.plan_id
        camps = self.campaigns
        # cheap early exit: a lifetime budget that binds, or a send already past its end
        for c, k, hi in conn.execute("SELECT c, COUNT(*), MAX(nb) FROM _plan_ord GROUP BY c"):
            kind, cap = camps[c].capacity()
            end = camps[c].end_time
            if (kind == "lifetime" and cap is not None and k > cap) or (end is not None and hi >= end):
                return False
        n = conn.execute("SELECT MAX(send_id) FROM _plan_ord").fetchone()[0] or 0
        starts = list(range(1, n + 1, size))
        if len(starts) <= 10_000:
            first_nbs = [conn.execute("SELECT nb FROM _plan_ord WHERE send_id = ?", (k,)).fetchone()[0]
                         for k in starts]
        else:
            first_nbs = [r[0] for r in conn.execute(
                "SELECT nb FROM _plan_ord WHERE (send_id - 1) % ? = 0 ORDER BY send_id", (size,))]
        days = self._batch_days(first_nbs)
        pushed = [(k, d * DAY) for k, nb, d in zip(starts, first_nbs, days) if d * DAY > nb]
        if pushed:
            self._add_windows(pushed[0][1], days[-1] * DAY + DAY)
        for k, start in pushed:
            conn.execute(
                "UPDATE _plan_ord SET nb = (SELECT MAX(w.open, :s) FROM _plan_windows w "
                " WHERE w.z = _plan_ord.z AND w.close > :s ORDER BY w.close LIMIT 1) "
                "WHERE send_id BETWEEN :a AND :b AND nb < :s",
                {"s": start, "a": k, "b": k + size - 1})
        # per campaign x message x day: budgets, ends and the figures, in one grouped scan
        stats = conn.execute("SELECT c, m, nb / 86400 AS d, COUNT(*), MIN(nb), MAX(nb) FROM _plan_ord "
                             "GROUP BY c, m, d").fetchall()
        per_c: dict[int, int] = {}
        per_cd: dict[tuple[int, int], int] = {}
        for c, m, d, k, lo, hi in stats:
            per_c[c] = per_c.get(c, 0) + k
            per_cd[(c, d)] = per_cd.get((c, d), 0) + k
            end = camps[c].end_time
            if end is not None and hi >= end:
                return False
        for c, camp in enumerate(camps):
            kind, cap = camp.capacity()
            if cap is None:
                continue
            if kind == "lifetime" and per_c.get(c, 0) > cap:
                return False
        for (c, d), k in per_cd.items():
            kind, cap = camps[c].capacity()
            if kind == "daily" and cap is not None and k > cap:
                return False
        conn.execute(
            "INSERT INTO plan_sends (plan_id, send_id, token_id, campaign_key, message_key, batch,"
            " not_before) SELECT ?, send_id, token_id, 'c' || (c + 1), 'm' || (m + 1),"
            " (send_id - 1) / ? + 1, nb FROM _plan_ord ORDER BY send_id", (pid, size))
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        msg = [0] * len(self.messages)
        for c, m, d, k, lo, hi in stats:
            first[c] = lo if c not in first else min(first[c], lo)
            last[c] = hi if c not in last else max(last[c], hi)
            msg[m] += k
        for i, camp in enumerate(camps):
            camp.sends = per_c.get(i, 0)
            camp.first, camp.last = first.get(i), last.get(i)
        for mrec, k in zip(self.messages, msg):
            mrec["sends"] = k
        mins = conn.execute("SELECT (send_id - 1) / ? AS b, MIN(nb) FROM _plan_ord GROUP BY b "
                            "ORDER BY b", (size,)).fetchall()
        self.batches = [{"batch": b + 1, "day": _day_str(days[b]), "not_before": mn,
                         "first_send_id": starts[b], "last_send_id": min(starts[b] + size - 1, n),
                         "sends": min(starts[b] + size - 1, n) - starts[b] + 1} for b, mn in mins]
        self.sends = n
        return True

    def _schedule_slow(self) -> None:
        """The sequential pass: needed when a budget or campaign end excludes or moves sends."""
        conn, camps, spec = self.conn, self.campaigns, self.spec
        size, per_day = spec.schedule.batch_size, spec.schedule.batches_per_day
        next_open = self.window.next_open
        znames = getattr(self, "zone_names", [])
        caps = [c.capacity() for c in camps]
        # 0: no limit, 1: lifetime budget (total), 2: daily budget (per UTC day)
        kind = [0 if cap is None else (1 if k == "lifetime" else 2) for k, cap in caps]
        capn = [cap for _, cap in caps]
        ends = [c.end_time for c in camps]
        msg_sends = [0] * len(self.messages)
        used = [0] * len(camps)
        cday = [-1] * len(camps)      # daily budget cursor per campaign (UTC day number)
        ccount = [0] * len(camps)
        unreachable = [0] * len(camps)
        first = [0] * len(camps)
        last = [-1] * len(camps)
        cur = conn.execute("SELECT nb0, token_id, c, m, z FROM _plan_ord ORDER BY send_id")
        kept = 0
        bday = -1            # current batch's UTC day
        on_day = 0           # batches started on bday
        bno = 0              # current batch number
        bmin = 0             # its earliest not_before
        bfirst = 0
        batches = self.batches
        out: list[tuple] = []
        excl: list[tuple] = []
        pid = self.plan_id
        keys = [c.key for c in camps]
        mkeys = [m["key"] for m in self.messages]
        ins = ("INSERT INTO plan_sends (plan_id, send_id, token_id, campaign_key, message_key, batch,"
               " not_before) VALUES (?,?,?,?,?,?,?)")
        nd_start = 0
        while True:
            rows = cur.fetchmany(CHUNK)
            if not rows:
                break
            for nb, token_id, ci, mi, z in rows:
                opens = kept % size == 0
                if opens:
                    d = nb // DAY
                    nd = d if (bno == 0 or d > bday) else (bday if on_day < per_day else bday + 1)
                    if nb < nd * DAY:
                        nb = next_open(znames[z], nd * DAY)
                elif nb < nd_start:
                    nb = next_open(znames[z], nd_start)
                lim = kind[ci]
                if lim == 1:  # lifetime: a total number of messages
                    if used[ci] >= capn[ci]:
                        excl.append((pid, token_id, "over_budget", keys[ci]))
                        unreachable[ci] += 1
                        continue
                elif lim == 2:  # daily: per UTC day, overflow to the next day's window
                    d = nb // DAY
                    cd = cday[ci]
                    if d <= cd:  # the campaign's current day (earlier rows were pushed to it)
                        d = cd + 1 if ccount[ci] >= capn[ci] else cd
                        if d > nb // DAY:
                            nb = next_open(znames[z], d * DAY)
                    end = ends[ci]
                    if capn[ci] == 0 or (end is not None and nb >= end):
                        excl.append((pid, token_id, "over_budget", keys[ci]))
                        unreachable[ci] += 1
                        continue
                    if d != cd:
                        cday[ci] = d
                        ccount[ci] = 1
                    else:
                        ccount[ci] += 1
                end = ends[ci]
                if end is not None and nb >= end:
                    excl.append((pid, token_id, "after_campaign_end", keys[ci]))
                    continue
                if not used[ci] or nb < first[ci]:
                    first[ci] = nb
                if nb > last[ci]:
                    last[ci] = nb
                used[ci] += 1
                kept += 1
                if opens:
                    if bno:
                        batches.append((bno, bday, bmin, bfirst, kept - 1))
                    on_day = on_day + 1 if (bno and nd == bday) else 1
                    bday = nd
                    nd_start = nd * DAY
                    bno += 1
                    bmin = nb
                    bfirst = kept
                elif nb < bmin:
                    bmin = nb
                msg_sends[mi] += 1
                out.append((pid, kept, token_id, keys[ci], mkeys[mi], bno, nb))
            conn.executemany(ins, out)
            out.clear()
            if excl:
                self._exclude(excl, self.excluded)
        if bno:
            batches.append((bno, bday, bmin, bfirst, kept))
        self.batches = [{"batch": b, "day": _day_str(d), "not_before": mn, "first_send_id": f,
                         "last_send_id": la, "sends": la - f + 1} for b, d, mn, f, la in batches]
        for m, n in zip(self.messages, msg_sends):
            m["sends"] = n
        for i, c in enumerate(camps):
            c.sends, c.unreachable = used[i], unreachable[i]
            c.first, c.last = (first[i], last[i]) if used[i] else (None, None)
        self.sends = kept

    # -- results ------------------------------------------------------------------------

    def finish(self, inputs, fingerprint, run, spec_path, rules_path) -> SavedPlan:
        conn, pid = self.conn, self.plan_id
        excluded = dict(self.excluded)
        audit_counts = dict(conn.execute(
            "SELECT verdict, COUNT(*) FROM audit_tokens WHERE run_id = ? AND verdict != 'migrate' "
            "GROUP BY verdict", (run.id,)).fetchall())
        for v in AUDIT_REASONS:
            if audit_counts.get(v):
                excluded[v] = audit_counts[v]
        same = conn.execute("SELECT COUNT(*) FROM audit_tokens WHERE run_id = ? AND verdict = "
                            "'migrate' AND is_primary = 0", (run.id,)).fetchone()[0]
        if same:
            excluded["same_person"] = same
        excluded = dict(sorted(excluded.items()))
        campaigns = []
        for c in self.campaigns:
            campaigns.append(PlanCampaign(
                key=c.key, name=c.name, page_id=c.page_id, topic_title=c.topic_title,
                ad_account_id=c.ad_account_id, currency=c.currency, daily_budget=c.daily_budget,
                lifetime_budget=c.lifetime_budget, start_time=c.start_time, end_time=c.end_time,
                cost_per_message=c.cost, cost_source=c.cost_source, messages=c.messages,
                sends=c.sends, estimated_cost=c.sends * c.cost, budget_total=c.budget_total(),
                unreachable_by_budget=c.unreachable, first_send_at=c.first, last_send_at=c.last))
        cost: dict[str, int] = {}
        budget: dict[str, int | None] = {}
        for c in campaigns:
            cost[c.currency] = cost.get(c.currency, 0) + c.estimated_cost
            if c.currency not in budget or budget[c.currency] is not None:
                budget[c.currency] = None if c.budget_total is None else \
                    (budget.get(c.currency) or 0) + c.budget_total
        messages = [PlanMessage(**m) for m in self.messages]
        batches = [PlanBatch(**b) for b in self.batches]
        unreachable = sum(c.unreachable_by_budget for c in campaigns)
        reason = None
        if self.sends == 0:
            if self.migrate_total == 0:
                reason = (f"the latest audit (as of {run.as_of}) has no subscriber with verdict "
                          "migrate")
            else:
                parts = ", ".join(f"{k} {v}" for k, v in excluded.items() if k not in AUDIT_REASONS
                                  and k != "same_person")
                reason = f"all {self.migrate_total} migrate subscribers were excluded ({parts})"
        conn.executemany(
            "INSERT INTO plan_campaigns (plan_id, campaign_key, name, page_id, topic_title, ad_account_id,"
            " currency, daily_budget, lifetime_budget, start_time, end_time, cost_per_message, sends,"
            " estimated_cost, unreachable_by_budget) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(pid, c.key, c.name, c.page_id, c.topic_title, c.ad_account_id, c.currency, c.daily_budget,
              c.lifetime_budget, c.start_time, c.end_time, c.cost_per_message, c.sends,
              c.estimated_cost, c.unreachable_by_budget) for c in campaigns])
        conn.executemany(
            "INSERT INTO plan_messages (plan_id, message_key, campaign_key, content_id, source, outcome,"
            " mm_message, sends) VALUES (?,?,?,?,?,?,?,?)",
            [(pid, m.key, m.campaign_key, m.content_id, m.source, m.outcome,
              json.dumps(m.message, ensure_ascii=False), m.sends) for m in messages])
        conn.executemany(
            "INSERT INTO plan_batches (plan_id, batch, day, not_before, first_send_id, last_send_id,"
            " sends) VALUES (?,?,?,?,?,?,?)",
            [(pid, b.batch, b.day, b.not_before, b.first_send_id, b.last_send_id, b.sends)
             for b in batches])
        return SavedPlan(
            plan_id=pid, name=self.spec.name, created_at=int(self.clock()),
            as_of=self.as_of.isoformat(), rules_version=self.rules.version, fingerprint=fingerprint,
            inputs=inputs, spec_path=spec_path, rules_path=str(rules_path) if rules_path else None,
            workspace=str(Path(self.conn_path())), audit_run_id=run.id, campaigns=campaigns,
            messages=messages, batches=batches, sends=self.sends, sends_digest=self.sends_digest,
            estimated_cost=cost, budget=budget, unreachable_by_budget=unreachable, excluded=excluded,
            warnings=self.warnings, zero_send_reason=reason, window=self.spec.schedule.window,
            default_timezone=self.spec.schedule.default_timezone)

    def conn_path(self) -> str:
        row = self.conn.execute("PRAGMA database_list").fetchone()
        return row[2] if row else ""

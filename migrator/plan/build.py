"""Spec + workspace -> saved plan: campaigns, messages, per-token sends, batches, costs.

The decisions per page and topic are SQL-free (`plan.campaigns`); the per-token work is two
streaming passes over SQLite with flat memory:

1. (here; one INSERT ... SELECT) every primary `migrate` token (view v_audit_migrate) gets
   its campaign and message and `not_before` = the first moment inside its local send window
   at or after the later of the send floor (campaign start + warm-up, or schedule.start)
   and `next_eligible_at`, looked up in a small table of each zone's windows;
2. (`plan.schedule`) in that order, tokens fill batches (batch_size, at most
   batches_per_day batches per UTC day; a later batch moves its sends to the next day's
   window) and campaign budgets (lifetime: total capacity; daily: per UTC day, then the
   next day). Tokens the budget cannot reach before the campaign end are excluded as
   over_budget.
send_id numbers sends in batch order; a row's not_before can be later than its batch's
day only when its campaign's daily budget pushed it.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

from migrator.audit import latest_run
from migrator.errors import PlanError
from migrator.plan.budgets import check_start_not_past
from migrator.plan.campaigns import CampaignDecisions, CampaignState, Estimator, check_accounts
from migrator.plan.content import ContentResolver, load_contents, load_usage
from migrator.plan.fingerprint import input_fingerprints, plan_fingerprint, seal_sends
from migrator.plan.model import PlanBatch, PlanCampaign, PlanMessage, SavedPlan, write_plan
from migrator.plan.schedule import Scheduler, add_windows, exclude
from migrator.plan.spec import PlanSpec, parse_window, read_spec_text, spec_from_text
from migrator.plan.spec_source import record_spec_source
from migrator.plan.windows import Windows
from migrator.timeparse import DAY

TEMP_TABLES = ("_plan_src", "_plan_groups", "_plan_zones", "_plan_windows", "_plan_ord", "_plan_ends",
               "_plan_old", "_plan_moved", "_plan_pushed", "_plan_dropped")
HORIZON_DAYS = 400           # tokens first eligible later than this after the floor are not planned
AUDIT_REASONS = ("stay_on_rn", "blocked", "opted_out", "review")
NEVER = 1 << 62              # the not_before of a token with no send window in the horizon


def _today(clock: Callable[[], float]) -> date:
    return datetime.fromtimestamp(clock(), timezone.utc).date()


def make_plan(ws, spec_path: str | Path, *, as_of: date | None = None, rules_path: str | None = None,
              out: str | Path | None = None, clock: Callable[[], float] = time.time,
              estimator: Estimator | None = None, estimate_base_url: str | None = None,
              notify: Callable[[str], None] = lambda message: None, encoding: str | None = None,
              force: bool = False) -> SavedPlan:
    """Load the spec and rules, build and store the plan, write it to `out` if given.

    The spec's text is kept in the workspace's row of the plan. `out` is checked before
    anything is built and never replaces the spec, the workspace or a file migrator did not
    write unless `force` (migrator.outputs). Costs for `cost.source = "estimate"` come from
    `estimator`; without one, and with `estimate_base_url`, from Meta's delivery estimate at
    that Graph host with the access token from MIGRATOR_ACCESS_TOKEN (when it is not set,
    `notify` says so and the spec's costs are used). `encoding`: of the spec and rules files
    (default: detected).
    """
    from migrator.outputs import check_output
    from migrator.rules import load_rules

    safe = {"force": force, "reads": [spec_path, rules_path], "workspace": ws.path}
    if out is not None:
        check_output(out, **safe)  # before the plan is built and stored
    spec_text = read_spec_text(spec_path, encoding)
    spec = spec_from_text(spec_text, where=str(spec_path))
    rules = load_rules(rules_path, encoding=encoding)
    with ExitStack() as graph:
        if estimator is None and estimate_base_url and spec.cost.source == "estimate":
            from migrator.plan.estimate import env_graph_estimator

            estimator = graph.enter_context(env_graph_estimator(estimate_base_url, notify))
        plan = build_plan(ws, spec, as_of=as_of, rules=rules, spec_path=str(spec_path),
                          rules_path=rules_path, clock=clock, estimator=estimator)
    if not _has_ledger(ws.conn, plan.plan_id):     # a kept plan (`_kept_plan`) keeps its spec record too
        record_spec_source(ws, plan, spec_path, spec_text)
    if out is not None:
        write_plan(plan, out, **safe)
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
    check_accounts(spec, rules, where)
    past_start = check_start_not_past(spec.campaign.start, as_of, clock(), where)   # refuses a long-gone start
    try:
        with ws.transaction():   # inputs, snapshot and plan rows from one consistent state
            inputs = input_fingerprints(ws, spec, rules)
            fingerprint = plan_fingerprint(inputs, as_of.isoformat())
            plan_id = _plan_id(conn, fingerprint)
            kept = _kept_plan(conn, plan_id, fingerprint)
            if kept is not None:
                return kept
            warnings: list[str] = [past_start] if past_start else []
            if run.as_of != as_of.isoformat():
                warnings.append(f"the audit is as of {run.as_of}, the plan as of {as_of.isoformat()}")
            b = _Builder(ws, spec, rules, where, as_of, plan_id, clock, estimator, warnings)
            b.snapshot()
            b.leave_out_moved()
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


def _plan_id(conn, fingerprint: str) -> str:
    """`p` + 12 hex of the fingerprint; once Meta accepted sends, of the fingerprint and those sends.

    The fingerprint (what staleness checks) leaves the ledger out: a plan stays fresh and
    resumable while its own sends are accepted. But a plan made again after sends were accepted
    leaves those people out (`already_moved`): its rows differ, so it gets its own id instead of
    replacing the rows of the plan whose ledger holds those sends.
    """
    from migrator.execute import moved_digest
    from migrator.store.digest import sha

    n, digest = moved_digest(conn)
    return "p" + (sha("plan-id/1", fingerprint, digest) if n else fingerprint)[:12]


def _has_ledger(conn, plan_id: str) -> bool:
    return conn.execute("SELECT 1 FROM main.exec_sends WHERE plan_id = ? LIMIT 1", (plan_id,)).fetchone() is not None


def _kept_plan(conn, plan_id: str, fingerprint: str) -> SavedPlan | None:
    """The stored plan of this id when its ledger has rows (a run began), else None.

    The same id means the same inputs and the same accepted sends, so the same plan. Rebuilding
    it would rewrite its stored copy (a new `created_at`, the estimate asked again), and the file
    the README's resume command runs would then read as stale ("the workspace's copy ... differs")
    while that run waits for its window or holds only unknown rows. A plan no run began is
    rebuilt as before.
    """
    row = conn.execute("SELECT fingerprint, body FROM plans WHERE plan_id = ?", (plan_id,)).fetchone()
    if row is None or row[0] != fingerprint or not row[1] or not _has_ledger(conn, plan_id):
        return None
    try:
        return SavedPlan.model_validate_json(row[1])
    except ValueError:
        return None


@contextmanager
def _insert_seal_trigger_off(conn):
    """Leave out the trigger that marks a sealed plan's rows changed while the planner writes them.

    `plan_sends_seal_insert` runs once per inserted row (0.4 s of 1.1 s for 800,000 sends) and
    is useless here: the planner writes only its own plan's rows and seals them right after
    (`seal_sends`, which replaces the seal with `changed = 0`). It is dropped and created again,
    from its own text in sqlite_master, inside the plan's write transaction, so no other
    connection ever sees the workspace without it (a failure rolls the drop back).
    """
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"
                       " AND name = 'plan_sends_seal_insert'").fetchone()
    if row is None:
        yield
        return
    conn.execute("DROP TRIGGER plan_sends_seal_insert")
    try:
        yield
    finally:
        conn.execute(row[0])


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
        self.moved = 0
        self.counts: list[int] = []     # rows per campaign in _plan_ord (pass_assign)

    # -- decisions per page and topic (small) --------------------------------------------

    def snapshot(self) -> None:
        """One scan of the audit's primary migrate tokens into a compact temp table."""
        for t in TEMP_TABLES:
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{t}")
        self.conn.execute(
            "CREATE TEMP TABLE _plan_src AS SELECT m.token_id AS token_id, m.page_id AS page_id,"
            " m.topic_title AS topic, m.timezone AS tz, t.next_eligible_at AS next_eligible_at "
            "FROM v_audit_migrate m JOIN tokens t ON t.id = m.token_id")

    def leave_out_moved(self) -> None:
        """Take out of `_plan_src` every subscription already moved to MM (the executor's
        `moved_sql`: a send accepted by Meta to the token or its person, in any plan): planning
        them again would count them in cost and budget, and a changed message would bill them twice.
        `pass_assign` records them in plan_excluded as `already_moved`."""
        from migrator.execute import moved_sql

        conn = self.conn
        conn.execute("CREATE TEMP TABLE _plan_moved (token_id INTEGER PRIMARY KEY)")
        if conn.execute("SELECT 1 FROM main.exec_sends WHERE state = 'sent' LIMIT 1").fetchone() is None:
            return
        conn.execute("INSERT INTO _plan_moved SELECT s.token_id FROM _plan_src s JOIN main.tokens t"
                     f" ON t.id = s.token_id WHERE {moved_sql('t')}")
        self.moved = conn.execute("SELECT COUNT(*) FROM _plan_moved").fetchone()[0]
        if self.moved:
            conn.execute("DELETE FROM _plan_src WHERE token_id IN (SELECT token_id FROM _plan_moved)")
            n = self.moved
            self.warnings.append(f"{n:,} {'subscription' if n == 1 else 'subscriptions'} already moved to MM "
                                 "by earlier plans (a send accepted by Meta) "
                                 f"{'is' if n == 1 else 'are'} left out (already_moved)")

    def prepare(self) -> None:
        """Decide campaigns and messages per page and topic group (`plan.campaigns`)."""
        spec, conn = self.spec, self.conn
        pages = {r[0]: r for r in conn.execute(
            "SELECT page_id, name, business_country, ad_account_id, currency FROM pages")}
        groups = conn.execute("SELECT page_id, topic, COUNT(*) FROM _plan_src "
                              "GROUP BY page_id, topic ORDER BY page_id, topic").fetchall()
        resolver = ContentResolver(spec, load_contents(conn), where=self.where, usage=load_usage(conn))
        decisions = CampaignDecisions(spec, self.rules, self.where, self.as_of, self.estimator,
                                      self.warnings)
        start, floor = decisions.start_and_floor()
        sched = spec.schedule
        self.floor = floor
        self.window = Windows(*parse_window(sched.window), default_zone=sched.default_timezone,
                              origin=floor)
        decisions.decide(groups, pages, resolver, start, floor)
        self.campaigns, self.messages = decisions.campaigns, decisions.messages
        self.groups, self.migrate_total = decisions.groups, decisions.migrate_total
        self.counts = [0] * len(self.campaigns)
        for page_id, topic, n in groups:
            g = self.groups[page_id, topic]
            if g.__class__ is not str:
                self.counts[g[0]] += n

    # -- pass 1 (set-based): campaign/message and first in-window moment per token -------

    def pass_assign(self) -> None:
        """Fill temp._plan_ord (send_id, token_id, c, m, z, not_before) in (not_before, token_id) order.

        Groups, resolved zones and each zone's send windows (UTC, over the horizon the
        tokens need) are small temp tables; the per-token `not_before` is an index seek.
        """
        conn, pid = self.conn, self.plan_id
        # keyed by the token's own columns (topic NULL as char(30)): a composite key look-up per
        # token, where one concatenated text key cost a string built per token (0.3 s per 1M)
        conn.execute("CREATE TEMP TABLE _plan_groups (page_id TEXT, topic TEXT, c INTEGER, m INTEGER,"
                     " reason TEXT, floor INTEGER, end_at INTEGER, PRIMARY KEY (page_id, topic)) WITHOUT ROWID")
        # at_lo: the zone's first send moment at or after the earliest floor, the not_before of
        # most tokens (no later first-eligible moment): one look-up with the zone instead of a
        # window seek per token
        conn.execute("CREATE TEMP TABLE _plan_zones (tz TEXT PRIMARY KEY, z INTEGER NOT NULL, at_lo INTEGER)")
        conn.execute("CREATE TEMP TABLE _plan_windows (z INTEGER, close INTEGER, open INTEGER,"
                     " PRIMARY KEY (z, close)) WITHOUT ROWID")
        rows = []
        for (page_id, topic), g in self.groups.items():
            topic = "\x1e" if topic is None else topic
            if g.__class__ is str:
                rows.append((page_id, topic, None, None, g, None, None))
            else:
                c = self.campaigns[g[0]]
                rows.append((page_id, topic, g[0], g[1], None, c.floor, c.end_time))
        conn.executemany("INSERT INTO _plan_groups VALUES (?,?,?,?,?,?,?)", rows)
        if self.moved:
            conn.execute("INSERT INTO plan_excluded (plan_id, token_id, reason, campaign_key) "
                         "SELECT ?, token_id, 'already_moved', NULL FROM _plan_moved", (pid,))
        if any(r[4] is not None for r in rows):
            conn.execute(
                "INSERT INTO plan_excluded (plan_id, token_id, reason, campaign_key) "
                "SELECT ?, s.token_id, g.reason, NULL FROM _plan_groups g JOIN _plan_src s "
                "ON g.page_id = s.page_id AND g.topic = IFNULL(s.topic, char(30)) "
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
            zrows.append(("" if tz is None else tz, index[z], None))
        if w.default_zone not in index:
            index[w.default_zone] = len(names)
            names.append(w.default_zone)
        conn.executemany("INSERT OR REPLACE INTO _plan_zones VALUES (?,?,?)", zrows)
        self.zone_names = names
        default_z = index[w.default_zone]
        # horizon: from the earliest floor to the latest first-eligible moment (+2 days)
        lo = min(c.floor for c in self.campaigns)
        hi = conn.execute("SELECT MAX(next_eligible_at) FROM _plan_src").fetchone()[0] or 0
        hi = min(max(hi, lo), lo + HORIZON_DAYS * DAY) + 2 * DAY
        self._add_windows(lo, hi)
        conn.execute("UPDATE _plan_zones SET at_lo = (SELECT MAX(w.open, :lo) FROM _plan_windows w"
                     " WHERE w.z = _plan_zones.z AND w.close > :lo ORDER BY w.close LIMIT 1)", {"lo": lo})
        cap_hit = conn.execute("SELECT 1 FROM _plan_src WHERE next_eligible_at >= ? LIMIT 1",
                               (lo + HORIZON_DAYS * DAY,)).fetchone() is not None
        src = (
            "SELECT x.token_id AS token_id, x.c AS c, x.m AS m, x.z AS z, x.end_at AS end_at, "
            " CASE WHEN x.e = :lo AND x.at_lo IS NOT NULL THEN x.at_lo"
            " ELSE IFNULL((SELECT MAX(w.open, x.e) FROM _plan_windows w WHERE w.z = x.z AND w.close > x.e "
            "  ORDER BY w.close LIMIT 1), :never) END AS not_before "
            "FROM (SELECT s.token_id AS token_id, g.c AS c, g.m AS m, g.end_at AS end_at, "
            "       IFNULL(zz.z, :z) AS z, zz.at_lo AS at_lo, MAX(g.floor, IFNULL(s.next_eligible_at, 0)) AS e "
            "      FROM _plan_src s "
            "      JOIN _plan_groups g ON g.page_id = s.page_id AND g.topic = IFNULL(s.topic, char(30)) "
            "      LEFT JOIN _plan_zones zz ON zz.tz = IFNULL(s.tz, '') "
            "      WHERE g.reason IS NULL) x")
        keys = [c.key for c in self.campaigns]
        # sends in (not_before, token_id) order: send_id is the rank; c, m, z index campaigns,
        # messages and zone_names; first_not_before keeps the value before batching moves it
        # (a token beyond the window horizon has no window: its not_before is NEVER, so it sorts
        # last, then goes; a plain sort key, where `not_before IS NULL` first cost 0.6 s per 1M)
        conn.execute("CREATE TEMP TABLE _plan_ord (send_id INTEGER PRIMARY KEY, token_id INTEGER,"
                     " c INTEGER, m INTEGER, z INTEGER, not_before INTEGER, first_not_before INTEGER)")
        conn.execute(
            "INSERT INTO _plan_ord (token_id, c, m, z, not_before, first_not_before) "
            f"SELECT token_id, c, m, z, not_before, not_before FROM ({src})"
            " ORDER BY not_before, token_id",
            {"z": default_z, "never": NEVER, "lo": lo})
        ends = [(i, c.end_time) for i, c in enumerate(self.campaigns) if c.end_time is not None]
        if not (cap_hit or ends):
            return
        # rows are in not_before order: when the last one is before every end, none is late
        last = conn.execute("SELECT not_before FROM _plan_ord ORDER BY send_id DESC LIMIT 1").fetchone()
        if last is None or last[0] < min((e for _, e in ends), default=NEVER):
            return
        conn.execute("CREATE TEMP TABLE _plan_ends (c INTEGER PRIMARY KEY, end_at INTEGER)")
        conn.executemany("INSERT INTO _plan_ends VALUES (?, ?)", ends)
        late = []
        for token_id, ci, not_before in conn.execute(
                "SELECT o.token_id, o.c, o.not_before FROM _plan_ord o LEFT JOIN _plan_ends e"
                " ON e.c = o.c WHERE o.not_before = ? OR o.not_before >= e.end_at", (NEVER,)):
            late.append((pid, token_id, "eligible_too_late" if not_before == NEVER else "after_campaign_end",
                         keys[ci]))
            self.counts[ci] -= 1
        conn.execute("DROP TABLE _plan_ends")
        if late:
            self._exclude(late, self.excluded)
            # renumber without them (rare: only when some sends fall after their campaign's end)
            conn.execute("ALTER TABLE _plan_ord RENAME TO _plan_old")
            conn.execute("CREATE TEMP TABLE _plan_ord (send_id INTEGER PRIMARY KEY, token_id INTEGER,"
                         " c INTEGER, m INTEGER, z INTEGER, not_before INTEGER, first_not_before INTEGER)")
            conn.execute("INSERT INTO _plan_ord (token_id, c, m, z, not_before, first_not_before)"
                         " SELECT token_id, c, m, z, not_before, first_not_before"
                         " FROM _plan_old o WHERE o.not_before < ? AND NOT EXISTS (SELECT 1 FROM"
                         " plan_excluded x WHERE x.plan_id = ? AND x.token_id = o.token_id) ORDER BY send_id",
                         (NEVER, pid))
            conn.execute("DROP TABLE _plan_old")

    def _exclude(self, rows: list[tuple], counts: dict[str, int]) -> None:
        exclude(self.conn, rows, counts)

    def _add_windows(self, lo: int, hi: int) -> None:
        add_windows(self.conn, self.window, self.zone_names, lo, hi)

    # -- pass 2: batches and budgets in send order (`plan.schedule`) ---------------------

    def pass_schedule(self) -> None:
        """Number the sends, cut batches, apply budgets; set-based unless a budget binds."""
        if not self.campaigns:
            self.sends = 0
        else:
            scheduler = Scheduler(self.conn, self.plan_id, self.spec.schedule, self.campaigns,
                                  self.messages, self.window, self.zone_names, self.excluded,
                                  counts=self.counts)
            with _insert_seal_trigger_off(self.conn):
                scheduler.run()
            self.batches, self.sends = scheduler.batches, scheduler.sends
        self.sends_digest = seal_sends(self.conn, self.plan_id)

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
            if self.migrate_total == 0 and self.moved:
                reason = (f"all {self.moved} migrate subscribers of the latest audit (as of {run.as_of}) "
                          "already moved to MM by earlier plans")
            elif self.migrate_total == 0:
                reason = (f"the latest audit (as of {run.as_of}) has no subscriber with verdict "
                          "migrate")
            else:
                parts = ", ".join(f"{k} {v}" for k, v in excluded.items() if k not in AUDIT_REASONS
                                  and k != "same_person")
                reason = f"all {self.migrate_total + self.moved} migrate subscribers were excluded ({parts})"
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

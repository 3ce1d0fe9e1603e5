"""The per-send worker: one claimed row through the paced client, and Meta's answer into the ledger.

`Sender` holds a run's state (pacer, breaker, campaigns in memory, results awaiting their group
commit) and turns each answer into a ledger transition (outcomes.decide), a campaign's state
(warming, paused, stopped), a page stop or a breaker trip. The loop that claims rows and feeds
the workers is `loop.Run`, a subclass; the engine sets both up and winds them down.
"""

from __future__ import annotations

import asyncio
import math
import random

from migrator.execute import breaker as brk
from migrator.execute import campaigns as camp
from migrator.execute.ledger import Claimed, Ledger, Result, transaction
from migrator.execute.outcomes import decide, error_code
from migrator.execute.pacing import Answer, Gate, Pacer, budget_resume_at, next_day_start, warmup_poll_delay
from migrator.execute.sendable import Screen
from migrator.execute.summary import ExecOptions, ExecutionSummary
from migrator.graph import GraphError
from migrator.graph.errors import NetworkError
from migrator.privacy import short_hash


class Sender:
    """One run's sending state and the handling of each answer (see the module docstring)."""

    def __init__(self, ws, plan, client, ledger: Ledger, opts: ExecOptions, *, clock, sleep, notify, progress,
                 stop: asyncio.Event, lock, rules, summary: ExecutionSummary):
        self.ws, self.plan, self.client, self.ledger, self.opts = ws, plan, client, ledger, opts
        self.clock, self.sleep, self.notify, self.progress = clock, sleep, notify, progress
        self.stop, self.lock, self.summary = stop, lock, summary
        self.pacer = Pacer(opts.rate, clock=clock, sleep=sleep, stop=stop,
                           on_pause=lambda secs, why: self._paused("all", secs, f"every send: {why}"))
        self.gate = Gate(opts.concurrency, stop=stop)   # the adaptive in-flight limit (pacing.aimd_next)
        self.results: list[Result] = []
        self.in_flight = 0
        self.fatal: GraphError | None = None
        self.lost_lock = False
        self.rng = random.Random()
        self.warmup_codes = frozenset(rules.warmup_error_codes.value)
        self.recipient_wait = rules.mm_cadence_hours.value * 3600.0   # from the rules
        self.warmup_limit = (opts.warmup_limit_seconds if opts.warmup_limit_seconds is not None
                             else rules.warmup_wait_limit_hours.value * 3600.0)
        self.warmup_poll_cap = max(1.0, float(rules.warmup_poll_max_seconds.value))
        self.pcs = {c.key: c for c in plan.campaigns}
        self.msg_of = {m.key: m.message for m in plan.messages}
        self.campaigns: dict[str, camp.CampaignRun] = {}
        self.changed = asyncio.Event()
        self.breaker = brk.Breaker(brk.Thresholds.from_rules(rules))
        self.campaigns_of: dict[str, list[str]] = {}
        for c in plan.campaigns:
            self.campaigns_of.setdefault(c.page_id, []).append(c.key)
        self.screen: Screen | None = ledger.screen
        self.claimed_dv: dict[int, int] = {}         # send_id -> data_version when claimed
        self.suspects: list[tuple[int, int, int, int]] = []   # (token_id, code, send_id, at) to record
        self.successes: list[int] = []               # token ids sent (clear their suspect feedback)
        self.outage_since: float | None = None     # first request that never left, in a row
        self.outage_failures = 0
        self.network_down = False
        self.idle: dict[str, tuple[int, int | None]] = {}   # loop.Run: campaigns whose claim found nothing more due
        self.idle_dv: int | None = None

    # ------------------------------------------------------------------ group commits
    def flush(self) -> None:
        if not self.results and self.lock is None:
            return
        batch, self.results = self.results, []
        suspects, self.suspects = self.suspects, []
        successes, self.successes = self.successes, []
        main_ledger = self.ledger.schema == "main"

        def extra(conn):
            if main_ledger:
                brk.feedback(conn, self.plan.plan_id, suspects, successes)
            if self.breaker.suspects:
                self.breaker.promote(conn, self.ledger.table("exec_sends"), self.plan.plan_id, self.campaigns_of)
            if self.lock is not None and not self.lock.heartbeat(conn):
                self.lost_lock = True
        self.ledger.record(batch, extra=extra)
        if self.idle and any(r.state == "planned" for r in batch):
            self.idle.clear()      # a released row may be due again: every campaign is asked again
        if self.lost_lock:
            self.stop.set()

    async def committer(self) -> None:
        while True:
            await asyncio.sleep(self.opts.commit_interval)
            self.flush()

    # ------------------------------------------------------------------ one send
    async def send(self, row: Claimed) -> None:
        c = self.campaigns[row.campaign_key]
        res = self._precheck(row, c, recheck=False)
        if res is None:
            await self.pacer.acquire()
            while not self.gate.room():      # the limit fell while this worker waited (a pause)
                await self.gate.wait_room()
                await self.pacer.acquire()
            res = self._precheck(row, c)     # the check nearest the request: with data_version
        if res is None:
            self.gate.begin()
            try:
                res = await self._request(row, c)
            finally:
                self.gate.end()
            # every request that reached (or may have reached) Meta counts, warm-up probes included
            self.summary.attempted += int(res.reason != "never_left")
        self.claimed_dv.pop(row.send_id, None)
        self.results.append(res)
        c._probe_out = False  # type: ignore[attr-defined]
        self.summary.mm_marked += int(res.mm_state is not None)
        if res.state in ("sent", "unknown", "failed", "skipped"):
            setattr(self.summary, res.state, getattr(self.summary, res.state) + 1)
            self.progress(1)
        elif res.attempted:
            self.summary.rescheduled += 1
        if len(self.results) >= 512:
            self.flush()

    def _precheck(self, row: Claimed, c: camp.CampaignRun, *, recheck: bool = True) -> Result | None:
        """Rows claimed before their campaign stopped or warmed up are not sent.

        `recheck`: also ask whether another connection committed since the claim (a stop, perhaps).
        The first call (before the pacer) leaves that to the second, made right before the request:
        the later check is the one that matters, and it sees every commit the first would have."""
        if row.message_key in c.stopped_messages:
            return Result(row.send_id, "failed", False, reason="fix_payload", error=c.stopped_messages[row.message_key])
        if c.state == "stopped":
            return Result(row.send_id, "skipped", False, reason=c.reason, error=c.error)
        if self.stop.is_set() or c.state in ("warming", "paused", "failed", "pending"):
            return Result(row.send_id, "planned", False)
        if recheck and self.screen is not None:   # another connection committed since the claim: a stop, perhaps
            dv = self._data_version()
            if dv != self.claimed_dv.get(row.send_id, dv):
                why = self.screen.recheck(self.ledger.conn, row.send_id)
                if why is not None:
                    return Result(row.send_id, "skipped", False, reason=why)
                self.claimed_dv[row.send_id] = dv
        return None

    def _data_version(self) -> int:
        return self.ledger.conn.execute("PRAGMA main.data_version").fetchone()[0]

    async def _request(self, row: Claimed, c: camp.CampaignRun) -> Result:
        now = self.clock()
        try:
            r = await self.client.send_message(c.ad_account_id, message_id=c.message_id,
                                               subscription_token=row.token, message=self.msg_of[row.message_key])
        except GraphError as err:
            return self._failure(row, c, err, sent_at=now)
        except Exception as exc:  # noqa: BLE001 - an unexpected client failure: the send may have left
            self.notify(f"send {row.send_id}: unexpected {type(exc).__name__}; its outcome is unknown")
            return Result(row.send_id, "unknown", True, reason=f"client_error:{type(exc).__name__}")
        self._network_answered()
        self.pacer.observe(r.usage)
        self._rate_signal(now, r.usage, throttled=False)
        self.successes.append(row.token_id)
        self.breaker.observe(c.page_id, row.token_id, None, now)
        if c.state == "probing":
            c.state = "ready"
            self.notify(f"campaign {c.key} is warmed up")
            camp.save_campaign(self.ledger, self.plan.plan_id, c, now)
        return Result(row.send_id, "sent", True, tracking_id=r.tracking_id)

    def _network_answered(self) -> None:
        if self.outage_since is not None:
            self.notify(f"the network is back after {self.outage_failures} failed connection(s)")
        self.outage_since, self.outage_failures = None, 0

    def _never_left(self, row: Claimed, err: GraphError) -> Result:
        """A request that never left (connection refused, DNS, connect timeout) costs no attempt.

        Repeated ones pause the whole run with a growing backoff; once they have lasted
        `outage_limit_seconds` the run stops as interrupted (resumable), never as done.
        """
        now = self.clock()
        self.summary.never_left += 1
        if self.outage_since is None:
            self.outage_since = now
        self.outage_failures += 1
        if now - self.outage_since >= self.opts.outage_limit_seconds:
            if not self.network_down:
                self.network_down = True
                self.notify(f"no connection for {now - self.outage_since:.0f} s "
                            f"({self.outage_failures} attempts): stopping; the sends stay planned")
            self.stop.set()
        else:
            wait = min(30.0, 2.0 ** min(self.outage_failures - 1, 5))
            # the pacer says the pause on the progress line (once, not per failed request) and counts it
            self.pacer.pause(wait, f"cannot connect ({err.message[:80]})")
        return Result(row.send_id, "planned", False, reason="never_left")

    def _rate_signal(self, sent_at: float, usage, *, throttled: bool) -> None:
        """One answer from Meta into the adaptive in-flight limit (pacing.aimd_next)."""
        seen = usage is not None and usage.seen
        self.gate.answered(Answer(sent_at=sent_at, now=self.clock(), throttled=throttled or (seen and usage.throttled),
                                  usage_pct=usage.max_pct if seen else None, in_flight=self.in_flight))

    def _failure(self, row: Claimed, c: camp.CampaignRun, err: GraphError, *, sent_at: float | None = None) -> Result:
        now = self.clock()
        if isinstance(err, NetworkError) and err.kind == "connect":
            return self._never_left(row, err)
        self._network_answered()
        text = (self.client.scrub(err.message.replace(row.token, short_hash(row.token))) or "")[:500]
        code = error_code(err)
        age = now - (c.created_at or now)
        if (code in self.warmup_codes or err.classification.warmup) and age > self.warmup_limit \
                and c.state in ("ready", "probing"):
            c.state = "failed"
            c.error = (f"still not ready (error {code}) {age / 3600:.1f} h after creation; the rules wait at most "
                       f"{self.warmup_limit / 3600:.1f} h")
            camp.save_campaign(self.ledger, self.plan.plan_id, c, now)
            self.summary.outcome = "stopped"
            self.summary.error = f"campaign {c.key} {c.error}"
            self.summary.hint = ("check the campaign in Ads Manager (status, payment method); "
                                 "run again to keep waiting")
            self.notify(self.summary.error)
            return Result(row.send_id, "planned", False, reason=f"warmup:{code}", error_code=code)
        v = decide(err, attempts=row.attempts + 1, warmup_codes=self.warmup_codes, campaign_age=age,
                   warmup_limit=self.warmup_limit, max_attempts=self.opts.max_attempts, rng=self.rng,
                   recipient_wait=self.recipient_wait,
                   suspect_codes=self.breaker.th.codes)
        if sent_at is not None:   # an answer (or a timeout) from Meta: what it says about the rate
            answered = not isinstance(err, NetworkError) or getattr(err, "http_status", None) is not None
            self._rate_signal(sent_at, self.client.usage if answered else None,
                              throttled=v.kind == "retry" and v.scope == "all")
        if v.kind in ("never", "later", "suspect"):   # a recipient-level answer: the breaker counts it
            held = self.breaker.tripped(c.page_id) is not None
            trip = self.breaker.observe(c.page_id, row.token_id, code, now)
            if v.kind == "suspect" and not held:
                self.suspects.append((row.token_id, code, row.send_id, int(now)))
            if trip is not None:
                self._trip(trip, now)
            if v.kind == "suspect" and self.breaker.tripped(c.page_id) is not None:
                # proves nothing about the person: the send goes again once the page is fixed
                return Result(row.send_id, "planned", True, reason=f"breaker_held:{code}", error_code=code,
                              error=text)
        why = (f"error {code}" if code is not None else f"network: {getattr(err, 'kind', 'failure')}") \
            + (" (Meta's remaining_seconds)" if v.meta_wait else "")
        if v.kind == "retry" and v.wait:
            if v.scope == "all":
                self.pacer.pause(v.wait, why)
            elif v.scope == "campaign":
                self._pause_campaign(c, row, code, v, now, why)
            else:
                self._paused("request", v.wait, f"send {row.send_id} only: {why}")
        nb = int(math.ceil(now + v.wait)) if v.wait else None
        if v.kind == "warmup":
            if c.state in ("ready", "probing"):
                c.state, c.warmup_code = "warming", code
                delay = v.wait if v.meta_wait and v.wait else warmup_poll_delay(
                    c.warmup_probes, first=self.opts.warmup_poll_first, cap=self.warmup_poll_cap,
                    fixed=self.opts.warmup_poll)
                delay = min(delay, max(1.0, self.warmup_limit - age))
                c.warmup_probes += 1
                c.next_probe_at = now + delay
                self.notify(f"campaign {c.key} is warming up (error {code}); "
                            f"{age / 60:.0f} of {self.warmup_limit / 60:.0f} min waited; next check in {delay:.0f} s")
                camp.save_campaign(self.ledger, self.plan.plan_id, c, now)
            return Result(row.send_id, "planned", False, reason=v.reason, error_code=code)
        if v.kind == "stop_page":
            self._stop_page(c, code, text)
            return Result(row.send_id, "planned", v.attempted, reason=v.reason, error_code=code, error=text)
        if v.kind == "pause_campaign":
            # a daily budget resets at the start of the ad account's day, in its own time zone
            until = budget_resume_at(now, c.account_timezone)
            if c.state != "paused" or (c.paused_until or 0) < until:
                c.state, c.paused_until, c.reason = "paused", until, v.reason
                camp.save_campaign(self.ledger, self.plan.plan_id, c, now)
                zone = c.account_timezone or "UTC (the ad account's time zone is not known)"
                when = (f"the ad account's next day starts at {_local(until, c.account_timezone)} {zone}"
                        if until == next_day_start(now, c.account_timezone) else
                        "the ad account's day has just begun: trying again shortly (clocks may differ)")
                self._paused("campaign", until - now, f"campaign {c.key}: daily budget reached; {when}")
            return Result(row.send_id, "planned", True, reason=v.reason, error_code=code, error=text)
        if v.kind == "stop_campaign" and c.state != "stopped":
            c.state, c.reason, c.error = "stopped", v.reason, text
            camp.save_campaign(self.ledger, self.plan.plan_id, c, now)
            self.notify(f"campaign {c.key} stopped: {text}")
        if v.kind == "fix_payload":
            c.stopped_messages[row.message_key] = text
            self.notify(f"message {row.message_key} refused: {text}")
        if v.kind == "fatal":
            if self.fatal is None:
                self.fatal = err
            self.stop.set()
        return Result(row.send_id, v.state, v.attempted, reason=v.reason, error_code=code, error=text,
                      not_before=nb if v.state == "planned" else None, mm_state=v.mm_state,
                      subcode=err.subcode, error_class=err.error_class.value if v.mm_state else None)

    def _stop_page(self, c: camp.CampaignRun, code: int, text: str) -> None:
        """A set-up refusal (preflight/guidance.py SETUP_STOPS): every campaign of the page (of the ad
        account too, for an ad-account refusal; all, for the app's) stops once; rows stay planned."""
        from migrator.preflight.guidance import SETUP_STOPS, setup_stop_text

        if any(s["page_id"] == c.page_id for s in self.summary.page_stops):
            return
        scope = SETUP_STOPS[code].scope
        what, todo = setup_stop_text(code)
        for cc in self.campaigns.values():
            if cc.page_id == c.page_id or scope == "app" or (scope == "ad_account"
                                                             and cc.ad_account_id == c.ad_account_id):
                if cc.state not in ("stopped", "failed"):
                    cc.state, cc.reason, cc.error = "failed", f"setup:{code}", f"{what}: {text}"
                    camp.save_campaign(self.ledger, self.plan.plan_id, cc, self.clock())
        pages = sorted({cc.page_id for cc in self.campaigns.values() if cc.reason == f"setup:{code}"})
        for pid in pages:
            if not any(s["page_id"] == pid for s in self.summary.page_stops):
                self.summary.page_stops.append({"page_id": pid, "code": code, "error": what, "what_to_do": todo,
                                                "campaigns": [k for k, cc in self.campaigns.items()
                                                              if cc.page_id == pid]})
                self.notify(f"page {pid} stopped: {what}. No subscriber is marked; its sends stay planned. "
                            f"{todo}")
    def _trip(self, trip: brk.Trip, now: float) -> None:
        """Stop every campaign of the page (sends stay planned: the same command resumes after the fix)."""
        keys = self.campaigns_of.get(trip.page_id, [])
        for k in keys:
            c = self.campaigns.get(k)
            if c is not None and c.state not in ("stopped", "failed"):
                c.state, c.reason, c.error = "failed", f"breaker:{trip.code}", trip.text()
                camp.save_campaign(self.ledger, self.plan.plan_id, c, now)
        self.flush()
        with transaction(self.ledger.conn):
            brk.hold(self.ledger.conn, self.ledger.table("exec_sends"), self.plan.plan_id, keys, trip.code, now)
        self.idle.clear()      # rows went back to planned
        self.summary.breaker.append(trip.to_json())
        self.notify(f"breaker: {trip.text()}. Nothing was marked; to check: {trip.check}")

    def _paused(self, scope: str, seconds: float, why: str) -> None:
        """Count a pause and say it on the progress line (why, how long)."""
        self.summary.pauses[scope] = self.summary.pauses.get(scope, 0) + 1
        self.notify(f"pause {_duration(seconds)}: {why}")

    def _pause_campaign(self, c: camp.CampaignRun, row: Claimed, code, v, now: float, why: str) -> None:
        """A retry-later about one campaign (2300033, MM pacing codes): only that campaign waits."""
        until = now + (v.wait or 0)
        pc = self.pcs.get(c.key)
        if code == 2300033 and pc is not None and pc.start_time > now and not v.meta_wait:
            until = float(pc.start_time)             # the start time in the plan: Meta's own schedule
            why = f"error {code}: the campaign starts at {_local(until, None)} UTC"
        if c.state in ("ready", "probing") or (c.state == "paused" and (c.paused_until or 0) < until):
            # the answers of its other requests in flight extend the pause quietly
            new = c.state != "paused" or until - (c.paused_until or 0) >= 1.0
            c.state, c.paused_until, c.reason = "paused", until, v.reason
            camp.save_campaign(self.ledger, self.plan.plan_id, c, now)
            if new:
                self._paused("campaign", until - now, f"campaign {c.key} only: {why}")


def _duration(seconds: float) -> str:
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _local(t: float, zone: str | None) -> str:
    from datetime import datetime

    from migrator.execute.pacing import account_zone

    return datetime.fromtimestamp(t, account_zone(zone)).strftime("%Y-%m-%d %H:%M")

"""The executor: drive a saved plan's sends through the ledger with bounded concurrency.

One asyncio loop: a producer claims due rows (committed in_flight before their requests leave),
`concurrency` workers send them through the paced `AsyncGraphClient`, and results are written
back in group commits. Errors become ledger transitions per class (outcomes.py). Dry runs use
the same code on a scratch ledger with the recording transport. `execute_plan` is the sync entry.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from migrator.errors import PlanError
from migrator.execute import breaker as brk
from migrator.execute import campaigns as camp
from migrator.execute import runs
from migrator.execute.ledger import KEEP_RECOVERED_NOW, Claimed, Ledger, Result, transaction
from migrator.execute.lock import acquire
from migrator.execute.outcomes import decide, error_code
from migrator.execute.pacing import Pacer, budget_resume_at, next_day_start, warmup_poll_delay
from migrator.execute.sendable import Screen, since_run
from migrator.execute.transport import RecordingTransport
from migrator.graph import AccountFatal, AsyncGraphClient, GraphError, NO_RETRY
from migrator.graph.errors import NetworkError
from migrator.privacy import short_hash
from migrator.timeparse import DAY


@dataclass
class ExecOptions:
    execute: bool = False
    batches: int | None = None          # at most this many batches (from the first with unsent rows)
    concurrency: int = 16
    rate: float | None = None           # sends per second (None: as fast as concurrency allows)
    resend_unknown: bool = False
    resend_named: tuple[int, ...] = ()  # send ids a person names for re-sending (if unknown)
    receipt_margin: float = 60.0        # --resend-unknown: a receipt this much newer than the send must exist
    retry_failed: str | None = None     # --retry-failed [REASON]: "transient" or one transient reason
    outage_limit_seconds: float = 300.0  # requests that never left for this long: stop, interrupted
    wait: bool = True                   # False (--no-wait): exit instead of waiting (warm-up, schedule)
    slice_size: int = 256
    commit_interval: float = 0.2
    max_attempts: int = 10
    warmup_poll: float | None = None    # --warmup-poll: fixed seconds between warm-up checks (else backoff)
    warmup_poll_first: float = 5.0      # first warm-up check this long after the first refusal, then x2
    warmup_limit_seconds: float | None = None   # default: rules.warmup_wait_limit_hours
    late: str = "wait"                  # --late: a send whose local window passed waits for the next | skip


@dataclass
class ExecutionSummary:
    plan_id: str
    mode: str                            # execute | dry_run
    outcome: str = "done"                # done | waiting | stopped | interrupted | fatal
    attempted: int = 0                   # requests made by this run
    sent: int = 0
    unknown: int = 0
    failed: int = 0
    skipped: int = 0
    rescheduled: int = 0
    recovered_unknown: int = 0           # in_flight rows of a dead run turned unknown
    resent_unknown: int = 0
    resend: dict[str, int] = field(default_factory=dict)   # --resend-unknown: rows per reason (resent:/kept:)
    retried_failed: int = 0
    settled_by_receipts: int = 0         # rows receipts settled at the start of this run
    killed_runs: int = 0                 # earlier runs found dead (their process gone)
    never_left: int = 0                  # requests that never reached the network (no attempt counted)
    mm_marked: int = 0                   # tokens Meta refused for good (recorded in mm_feedback)
    signal: str | None = None            # SIGINT | SIGTERM when a signal interrupted the run
    ledger: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    campaigns: list[dict] = field(default_factory=list)
    waiting_for: str | None = None
    next_due_at: int | None = None
    error: str | None = None
    hint: str | None = None
    elapsed_seconds: float = 0.0
    rate_per_second: float = 0.0
    throttle_pauses: int = 0             # pauses of every send (rate limits, usage headers)
    pauses: dict[str, int] = field(default_factory=dict)   # all | campaign | request -> pauses this run
    max_usage_pct: float = 0.0
    dry_run: dict | None = None
    lock_note: str | None = None
    page_stops: list[dict] = field(default_factory=list)   # set-up refusals: one per stopped page
    window_waiting: int = 0              # planned sends waiting for their recipient's local send window
    window_opens_at: int | None = None   # when the first of them may go (epoch s)
    breaker: list[dict] = field(default_factory=list)   # pages whose breaker tripped (execute/breaker.py)

    @property
    def exit_code(self) -> int:
        """0 done/waiting; 130/143 when SIGINT/SIGTERM interrupted it; 1 for any other stop."""
        if self.signal:
            return {"SIGINT": 130, "SIGTERM": 143}.get(self.signal, 1)
        return 0 if self.outcome in ("done", "waiting") else 1

    @property
    def resumable(self) -> bool:
        return self.outcome in ("waiting", "stopped", "interrupted", "fatal") or bool(self.ledger.get("planned"))

    def to_json(self) -> dict:
        d = {k: v for k, v in self.__dict__.items()}
        d["resumable"] = self.resumable
        d["exit_code"] = self.exit_code
        if self.mode != "dry_run":
            d["dry_run"] = False
            return d
        return _dry_run_json(d, self.dry_run or {})


# A dry run's counts under names no reader can take for what happened (14.8): "would_send", never "sent".
_WOULD = {"attempted": "would_request", "sent": "would_send", "unknown": "would_be_unknown", "failed": "would_fail",
          "skipped": "would_skip", "rescheduled": "would_reschedule", "recovered_unknown": "would_recover_unknown",
          "resent_unknown": "would_resend_unknown", "mm_marked": "would_mark", "ledger": "would_ledger",
          "reasons": "would_reasons", "throttle_pauses": "would_throttle_pauses", "pauses": "would_pauses"}


_WOULD_STATE = {"planned": "still_planned", "sent": "would_send", "skipped": "would_skip", "failed": "would_fail",
                "unknown": "would_be_unknown"}


def _dry_run_json(d: dict, record: dict) -> dict:
    out = {_WOULD.get(k, k): v for k, v in d.items() if k != "dry_run"}
    done = record.get("already") or {}
    final = d.get("ledger", {})
    out["would_ledger"] = {_WOULD_STATE.get(k, k): v if k in ("planned", "in_flight") else max(0, v - done.get(k, 0))
                           for k, v in final.items()}
    out["already_by_real_runs"] = done
    out["would_reasons"] = {_WOULD_STATE.get(k.partition(":")[0], k.partition(":")[0]) + ":" + k.partition(":")[2]: v
                            for k, v in d.get("reasons", {}).items()}
    out["dry_run"] = True
    out["resumable"] = False
    out["would_create"] = record.get("campaigns_created", 0)
    out["would_refuse"] = record.get("sends_refused", 0)
    out["would_refuse_by_code"] = record.get("refused_by_code", {})
    out["campaigns"] = [{"key": c["key"], "name": c["name"], "state": c["state"], "message_id": None,
                         "would_create": c["created"], "would_reuse": c["reused"], "reason": c["reason"],
                         "error": c["error"]} for c in d.get("campaigns", [])]
    return out


class _Run:
    def __init__(self, ws, plan, client, ledger: Ledger, opts: ExecOptions, *, clock, sleep, notify, progress,
                 stop: asyncio.Event, lock, rules, summary: ExecutionSummary):
        self.ws, self.plan, self.client, self.ledger, self.opts = ws, plan, client, ledger, opts
        self.clock, self.sleep, self.notify, self.progress = clock, sleep, notify, progress
        self.stop, self.lock, self.summary = stop, lock, summary
        self.pacer = Pacer(opts.rate, clock=clock, sleep=sleep, stop=stop,
                           on_pause=lambda secs, why: self._paused("all", secs, f"every send: {why}"))
        self.results: list[Result] = []
        self.in_flight = 0
        self.fatal: GraphError | None = None
        self.lost_lock = False
        self.rng = random.Random()
        self.warmup_codes = frozenset(rules.warmup_error_codes.value)
        self.recipient_wait = rules.mm_cadence_hours.value * 3600.0   # issue 16.5: from the rules
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
                self.breaker.promote(conn, self.ledger.t("exec_sends"), self.plan.plan_id, self.campaigns_of)
            if self.lock is not None and not self.lock.heartbeat(conn):
                self.lost_lock = True
        self.ledger.record(batch, extra=extra)
        if self.lost_lock:
            self.stop.set()

    async def committer(self) -> None:
        while True:
            await asyncio.sleep(self.opts.commit_interval)
            self.flush()

    # ------------------------------------------------------------------ one send
    async def send(self, row: Claimed) -> None:
        c = self.campaigns[row.campaign_key]
        res = self._precheck(row, c)
        if res is None:
            await self.pacer.acquire()
            res = self._precheck(row, c)
        if res is None:
            res = await self._request(row, c)
            # every request that reached (or may have reached) Meta counts, warm-up probes included (14.6)
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

    def _precheck(self, row: Claimed, c: camp.CampaignRun) -> Result | None:
        """Rows claimed before their campaign stopped or warmed up are not sent."""
        if row.message_key in c.stopped_messages:
            return Result(row.send_id, "failed", False, reason="fix_payload", error=c.stopped_messages[row.message_key])
        if c.state == "stopped":
            return Result(row.send_id, "skipped", False, reason=c.reason, error=c.error)
        if self.stop.is_set() or c.state in ("warming", "paused", "failed", "pending"):
            return Result(row.send_id, "planned", False)
        if self.screen is not None:   # another connection committed since the claim: a stop, perhaps
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
            return self._failure(row, c, err)
        except Exception as exc:  # noqa: BLE001 - an unexpected client failure: the send may have left
            self.notify(f"send {row.send_id}: unexpected {type(exc).__name__}; its outcome is unknown")
            return Result(row.send_id, "unknown", True, reason=f"client_error:{type(exc).__name__}")
        self._network_answered()
        self.pacer.observe(r.usage)
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

    def _failure(self, row: Claimed, c: camp.CampaignRun, err: GraphError) -> Result:
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
            # a daily budget resets at the start of the ad account's day, in its own time zone (14.5)
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
            brk.hold(self.ledger.conn, self.ledger.t("exec_sends"), self.plan.plan_id, keys, trip.code, now)
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

    # ------------------------------------------------------------------ the loop
    async def worker(self, queue: asyncio.Queue) -> None:
        while True:
            row = await queue.get()
            if row is None:
                return
            self.in_flight += 1
            try:
                await self.send(row)
            finally:
                self.in_flight -= 1
                self.changed.set()

    async def produce(self, queue: asyncio.Queue, max_batch: int) -> None:
        closed_msgs: set[str] = set()
        spins = 0
        # Claimed rows are in_flight: keep only what goes out in the next moment claimed, so a kill
        # leaves few rows in doubt (each claim is one small transaction).
        depth = min(self.opts.slice_size, 2 * max(1, self.opts.concurrency))
        if self.opts.rate:
            depth = max(2, min(depth, int(self.opts.rate * 0.25)))
        while not self.stop.is_set():
            now = self.clock()
            for c in self.campaigns.values():
                if c.state == "warming" and c.next_probe_at is not None and now >= c.next_probe_at:
                    c.state = "probing"
                if c.state == "paused" and c.paused_until is not None and now >= c.paused_until:
                    c.state, c.paused_until, c.reason = "ready", None, None
            self._close_new(closed_msgs)
            due_batch = self._due_batch(now, max_batch)
            claimed = 0
            if due_batch is not None:
                for c in self.campaigns.values():
                    if c.state == "ready":
                        room = max(0, depth - queue.qsize())
                        if room:
                            rows = self._claim(c.key, room, now, due_batch)
                            for r in rows:
                                await queue.put(r)
                            claimed += len(rows)
                    elif c.state == "probing" and not getattr(c, "_probe_out", False):
                        rows = self._claim(c.key, 1, now, due_batch)
                        if rows:
                            c._probe_out = True  # type: ignore[attr-defined]
                            await queue.put(rows[0])
                            claimed += 1
            for c in self.campaigns.values():
                if c.state != "probing":
                    c._probe_out = False  # type: ignore[attr-defined]
            if claimed:
                # keep the queue about one slice deep
                while queue.qsize() > depth // 2 and not self.stop.is_set():
                    self.changed.clear()
                    await _wait(self.changed, 0.05)
                continue
            if self.in_flight or queue.qsize():
                self.changed.clear()
                await _wait(self.changed, 0.05)
                continue
            # idle: nothing due right now
            self.flush()
            self._close_new(closed_msgs)
            nxt, why = self._next_event(max_batch)
            if nxt is None:
                return
            if not self.opts.wait:
                self._window_note()
                self.summary.outcome = "waiting"
                self.summary.waiting_for, self.summary.next_due_at = why, int(nxt)
                return
            if nxt > now:
                spins = 0
                self._window_note()    # one scan of the planned rows per wait, never per spin
                if self.summary.window_waiting:
                    self.notify(f"{self.summary.window_waiting} sends wait for their recipients' local send "
                                f"window, the first until {_utc(self.summary.window_opens_at)}")
                self.notify(f"waiting {nxt - now:.0f} s for {why}")
                await self._sleep_until(nxt)
            else:   # due but not claimable right now (e.g. a probe just came back): never spin
                spins += 1
                if spins > 3:
                    await _wait_or_sleep(self.stop, self.sleep, 1.0)

    def _claim(self, key: str, room: int, now: float, due_batch: int) -> list[Claimed]:
        dv = self._data_version() if self.screen is not None else 0
        rows = self.ledger.claim(key, room, now=now, max_batch=due_batch)
        if self.screen is not None:
            for r in rows:
                self.claimed_dv[r.send_id] = dv
            n = self.screen.drain()
            if n:
                self.summary.skipped += n
                self.progress(n)
        return rows

    def _window_note(self) -> None:
        if self.screen is not None and self.screen.windows is not None:
            self.summary.window_waiting, self.summary.window_opens_at = self.screen.waiting(self.ledger.conn)

    def _close_new(self, closed_msgs: set[str]) -> None:
        for c in self.campaigns.values():
            if c.state == "stopped" and not getattr(c, "_closed", False):
                self.flush()
                n = self.ledger.close_campaign(c.key, "skipped", c.reason or "campaign_stopped", c.error)
                self.summary.skipped += n
                self.progress(n)
                c._closed = True  # type: ignore[attr-defined]
            for mk, text in c.stopped_messages.items():
                if mk not in closed_msgs:
                    closed_msgs.add(mk)
                    self.flush()
                    n = self.ledger.close_message(mk, "fix_payload", text, None)
                    self.summary.failed += n
                    self.progress(n)

    def _due_batch(self, now: float, max_batch: int) -> int | None:
        due = None
        for b in self.plan.batches:
            if b.batch > max_batch:
                break
            if b.not_before <= now:
                due = b.batch
        # rows of a batch may have been rescheduled: claims also check each row's not_before
        return due if due is not None else None

    def _next_event(self, max_batch: int) -> tuple[float | None, str]:
        best: tuple[float | None, str] = (None, "")

        def consider(t, why):
            nonlocal best
            if t is not None and (best[0] is None or t < best[0]):
                best = (t, why)

        for c in self.campaigns.values():
            if c.state in ("ready", "probing", "warming", "paused"):
                t = self.ledger.next_due(c.key, max_batch)
                if t is None:
                    continue
                if c.state == "warming":
                    consider(max(t, c.next_probe_at or t), f"warm-up of campaign {c.key} (error {c.warmup_code})")
                elif c.state == "paused":
                    what = ("its ad account's next budget day" if c.reason == "daily_budget_reached"
                            else f"a pause ({c.reason})")
                    consider(max(t, c.paused_until or t), f"campaign {c.key}: {what}")
                else:
                    consider(float(t), "the next scheduled send")
        return best

    async def _sleep_until(self, t: float) -> None:
        while not self.stop.is_set():
            left = t - self.clock()
            if left <= 0:
                return
            await _wait_or_sleep(self.stop, self.sleep, min(left, 30.0))
            if self.lock is not None:
                self.flush()


def _utc(t: int | None) -> str:
    from datetime import datetime, timezone

    return "-" if t is None else datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


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


async def _wait(event: asyncio.Event, timeout: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        pass


async def _wait_or_sleep(stop: asyncio.Event, sleep, seconds: float) -> None:
    """Sleep via the injected sleep, but wake up at once when a stop is requested."""
    t = asyncio.ensure_future(sleep(seconds))
    s = asyncio.ensure_future(stop.wait())
    done, pending = await asyncio.wait({t, s}, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()


def _screen(conn, plan, ledger: Ledger, rules, opts: ExecOptions, notify) -> Screen:
    """The claim-time checks of this run (execute/sendable.py).

    A dry run looks at every send as due (no window, no cadence) but still skips stopped tokens.
    """
    from migrator.plan.spec import parse_window
    from migrator.plan.windows import Windows

    windows = None
    if opts.execute and plan.window:
        origin = min([b.not_before for b in plan.batches] + [int(plan.created_at)]) - 2 * DAY
        windows = Windows(*parse_window(plan.window), default_zone=plan.default_timezone or "UTC", origin=origin)
    elif opts.execute:
        notify("this plan was made before plans recorded their send window: the window is not checked at "
               "send time (make a new plan to have it checked)")
    return Screen(table=ledger.t("exec_sends"), plan_id=plan.plan_id, since_run=since_run(conn, plan.created_at),
                  cadence_seconds=int(rules.mm_cadence_hours.value * 3600) if opts.execute else None,
                  windows=windows, ends={c.key: c.end_time for c in plan.campaigns}, late=opts.late)


async def _record_zones(run: _Run, ledger: Ledger, plan, client, *, clock, notify, max_batch: int) -> None:
    """Read each ad account's time zone once (at setup) and record it with its campaigns (14.5)."""
    zones: dict[str, tuple[str | None, str]] = {}
    for c in run.campaigns.values():
        if run.stop.is_set():
            return
        if c.account_timezone or c.state == "stopped" or not ledger.open_count(c.key, max_batch):
            continue
        if c.ad_account_id not in zones:
            zones[c.ad_account_id] = await camp.account_timezone(client, c.ad_account_id)
            if zones[c.ad_account_id][0] is None:
                notify(f"ad account {c.ad_account_id}: time zone {zones[c.ad_account_id][1]}; "
                       "a daily-budget stop will wait until 00:00 UTC")
        zone, source = zones[c.ad_account_id]
        if zone:
            camp.record_zone(ledger, plan.plan_id, c, zone, source, clock())


def _load_plan(ws, plan):
    from migrator.plan import SavedPlan, load_plan

    if isinstance(plan, SavedPlan):
        return plan
    if isinstance(plan, (str, Path)):
        return load_plan(plan)
    raise PlanError(f"not a plan: {plan!r}")


def _check_names(plan) -> None:
    """Campaigns are found again by name (idempotent setup): names must be unique per ad account."""
    seen: dict[tuple[str, str], str] = {}
    for c in plan.campaigns:
        other = seen.setdefault((c.ad_account_id, c.name), c.key)
        if other != c.key:
            raise PlanError(f"campaigns {other} and {c.key} are both named {c.name!r} in ad account "
                            f"{c.ad_account_id}: the executor finds its campaigns again by name",
                            hint="put {topic} or {key} in the spec's [campaign] name and make a new plan")


@dataclass
class _Execution:
    """What the setup hands to the send loop and the wind-down of one `execute_plan_async` call.

    One object, so the three steps share the run's state by name rather than through a long list
    of locals, and the wind-down can release exactly what the setup took.
    """
    ws: Any
    plan: Any
    opts: ExecOptions
    client: Any
    clock: Callable[[], float]
    stop: asyncio.Event
    summary: ExecutionSummary
    ledger: Ledger
    lock: Any
    t0: float
    run_id: int | None = None
    run: _Run | None = None
    max_batch: int = -1
    already: dict | None = None      # a dry run: what real runs have already settled (not its own doing)


async def execute_plan_async(ws, plan, *, client: AsyncGraphClient, opts: ExecOptions, clock=time.time,
                             sleep=asyncio.sleep, notify: Callable[[str], None] = lambda m: None,
                             progress: Callable[[int], None] = lambda n: None,
                             stop: asyncio.Event | None = None, rules=None,
                             recorder: RecordingTransport | None = None,
                             signal_box: dict | None = None) -> ExecutionSummary:
    """Run (or dry-run) a saved plan; see `execute_plan` for the sync entry point.

    Three steps: the setup (freshness, lock, recovery, campaigns), the send loop, and the
    wind-down (summary, run record, lock release). The wind-down's release runs whatever the
    first two raised. `signal_box` (filled by the signal handler) names the signal that
    interrupted the run.
    """
    from migrator.rules import load_rules

    plan = _load_plan(ws, plan)
    _check_names(plan)
    rules = rules or load_rules(plan.rules_path)
    ex = _admit(ws, plan, client=client, opts=opts, clock=clock, stop=stop or asyncio.Event())
    try:
        await _set_up(ex, rules, sleep=sleep, notify=notify, progress=progress)
        await _send_loop(ex)
        _summarise(ex, recorder=recorder, signal_box=signal_box)
    finally:
        _wind_down(ex)
    return ex.summary


def _admit(ws, plan, *, client, opts: ExecOptions, clock, stop: asyncio.Event) -> _Execution:
    """Setup, first half: refuse a stale plan or a held workspace before anything is written.

    A refusal of a real run is recorded in the run history (so `migrator status` can say why
    nothing happened) and raised; nothing taken here needs undoing. A real run takes the lock
    and the workspace's ledger; a dry run a scratch ledger that the wind-down drops.
    """
    from migrator.errors import LockHeldError, StalePlanError
    from migrator.plan import check_fresh

    try:
        # the executor's own writes (exec_*, mm_feedback) are not plan inputs: nothing to excuse
        check_fresh(ws, plan)
    except StalePlanError as exc:
        if opts.execute:
            runs.record_refused(ws.conn, plan.plan_id, exc.message, now=int(clock()))
        raise
    summary = ExecutionSummary(plan.plan_id, "execute" if opts.execute else "dry_run")
    t0 = time.monotonic()
    lock = None
    conn = ws.conn
    if opts.execute:
        try:
            lock = acquire(conn, plan.plan_id)
        except LockHeldError as exc:
            runs.record_refused(conn, plan.plan_id, exc.message, now=int(clock()))
            raise
        summary.lock_note = lock.took_over
        ledger = Ledger(conn, plan.plan_id, clock=clock)
    else:
        ledger = Ledger.scratch(conn, plan.plan_id, clock=clock)
    return _Execution(ws, plan, opts, client, clock, stop, summary, ledger, lock, t0)


async def _set_up(ex: _Execution, rules, *, sleep, notify, progress) -> None:
    """Setup, second half: settle what earlier runs left, then make sure the campaigns exist.

    Order matters: dead runs are marked and receipts settle rows before any row is recovered or
    claimed, so a send Meta already took is never sent again; `--resend-unknown` decides before
    `recover()` so rows this run finds in flight stay unknown until receipts can speak. Campaigns
    are set up only for batches this run may send; a set-up refusal stops its page, not the run,
    and an account-level fatal error ends the run at `ex.run.fatal` (the wind-down reports it).
    """
    ws, plan, opts, clock, stop, summary, ledger = ex.ws, ex.plan, ex.opts, ex.clock, ex.stop, ex.summary, ex.ledger
    client = ex.client
    conn = ws.conn
    if opts.execute:   # we hold the lock: an unfinished run is a dead one
        summary.killed_runs = runs.mark_killed(conn, own_pid=os.getpid())
        ex.run_id = runs.start(conn, plan.plan_id, now=int(clock()))
    ledger.ensure_rows()
    # receipts first: a row Meta already took is settled before anything could re-send it
    summary.settled_by_receipts = ledger.settle()
    if opts.retry_failed:
        summary.retried_failed = ledger.retry_failed(opts.retry_failed)
    if opts.resend_unknown or opts.resend_named:
        # before recover(): rows this run finds in flight stay unknown until receipts can speak
        decisions = ledger.resend_unknown(margin=opts.receipt_margin if opts.resend_unknown else float("inf"),
                                          named=opts.resend_named)
        summary.resent_unknown = decisions.resent_total
        summary.resend = {**decisions.resent, **decisions.kept}
    summary.recovered_unknown = ledger.recover()
    if summary.recovered_unknown and (opts.resend_unknown or opts.resend_named):
        summary.resend[KEEP_RECOVERED_NOW] = summary.recovered_unknown
    if not opts.execute:
        ex.already = {k: n for k, n in ledger.counts().items() if k in ("sent", "skipped", "failed", "unknown") and n}
    ledger.set_status("running")
    ledger.screen = _screen(conn, plan, ledger, rules, opts, notify)
    run = ex.run = _Run(ws, plan, client, ledger, opts, clock=clock, sleep=sleep, notify=notify, progress=progress,
                        stop=stop, lock=ex.lock, rules=rules, summary=summary)
    run.campaigns = camp.load_campaigns(ledger, plan)
    keys = [c.key for c in plan.campaigns]
    first = ledger.first_open_batch(keys)
    if first is None:
        max_batch = -1
    else:
        max_batch = first + opts.batches - 1 if opts.batches else max((b.batch for b in plan.batches),
                                                                      default=first)
    ex.max_batch = max_batch
    try:
        if opts.execute and max_batch >= 0:
            await _record_zones(run, ledger, plan, client, clock=clock, notify=notify, max_batch=max_batch)
        todo = [c for c in run.campaigns.values()
                if not c.message_id and c.state != "stopped" and ledger.open_count(c.key, max_batch)]
        known: dict[str, dict[str, str]] = {}
        for c in todo:
            if stop.is_set():
                break
            if c.state == "failed" and (c.reason or "").startswith("setup:"):
                continue            # its page was just stopped by a set-up refusal
            if c.ad_account_id not in known:
                try:
                    known[c.ad_account_id] = await camp.existing_by_name(client, c.ad_account_id)
                except AccountFatal:
                    raise
                except GraphError:
                    known[c.ad_account_id] = None  # type: ignore[assignment]  # look up one by one
            try:
                await camp.ensure_campaign(ledger, plan, run.pcs[c.key], c, client, clock=clock,
                                           sleep=lambda s: _wait_or_sleep(stop, sleep, s), notify=notify,
                                           known=known[c.ad_account_id], dry_run=not opts.execute)
            except AccountFatal as err:
                from migrator.preflight.guidance import SETUP_STOPS

                if error_code(err) not in SETUP_STOPS:
                    raise
                run._stop_page(c, error_code(err), err.message[:500])   # a page's set-up: other pages go on
    except AccountFatal as err:
        run.fatal = err


async def _send_loop(ex: _Execution) -> None:
    """The send loop: one producer claims due rows, `concurrency` workers send them.

    Skipped after a fatal setup, a stop, or when no batch is open. However it ends, claimed rows
    not yet sent go back to planned and requests in flight finish and are committed, so the
    ledger never holds a row in flight that this process could still settle.
    """
    run, opts, stop = ex.run, ex.opts, ex.stop
    assert run is not None
    if run.fatal is None and ex.max_batch >= 0 and not stop.is_set():
        queue: asyncio.Queue = asyncio.Queue()
        workers = [asyncio.ensure_future(run.worker(queue)) for _ in range(max(1, opts.concurrency))]
        committer = asyncio.ensure_future(run.committer())
        try:
            await run.produce(queue, ex.max_batch)
        finally:
            # stop: claimed rows not yet sent go back to planned; in-flight requests finish
            while not queue.empty():
                row = queue.get_nowait()
                if row is not None:
                    run.results.append(Result(row.send_id, "planned", False))
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.gather(*workers, return_exceptions=True)
            committer.cancel()
            run.flush()
        run._close_new(set())
    run.flush()


def _summarise(ex: _Execution, *, recorder: RecordingTransport | None, signal_box: dict | None) -> None:
    """Wind-down, first half (when setup and loop returned): say how the run ended and why.

    One outcome for the exit code and the run record, most serious cause first (fatal, lost
    lock, network outage, signal), then page stops, breaker trips and campaigns that could not
    be set up, each with what to do; the ledger's counts and status last, from the database.
    """
    run, opts, stop, summary, ledger, client = ex.run, ex.opts, ex.stop, ex.summary, ex.ledger, ex.client
    assert run is not None
    summary.campaigns = [c.to_json() for c in run.campaigns.values()]
    summary.throttle_pauses, summary.max_usage_pct = run.pacer.pauses, run.pacer.max_usage_pct
    if run.fatal is not None:
        summary.outcome = "fatal"
        summary.error = run.fatal.message
        summary.hint = run.fatal.hint or "fix the account setup, then run the same command again"
    elif run.lost_lock:
        summary.outcome = "stopped"
        summary.error = "the workspace lock was removed (migrator unlock) while this run was going"
    elif run.network_down:
        summary.outcome = "interrupted"
        summary.error = (f"no connection to {getattr(client, 'base_url', 'the Graph API')} for "
                         f"{opts.outage_limit_seconds:.0f} s; nothing that never left was counted as an attempt")
        summary.hint = "check the network, then run the same command again"
    elif stop.is_set():
        summary.outcome = "interrupted"
        summary.signal = (signal_box or {}).get("signal")
    if summary.outcome == "done" and summary.page_stops:
        summary.outcome = "stopped"
        summary.error = "; ".join(f"page {s['page_id']} stopped: {s['error']}" for s in summary.page_stops)
        summary.hint = " ".join(dict.fromkeys(s["what_to_do"] for s in summary.page_stops))
    run._window_note()
    if summary.breaker and summary.outcome in ("done", "stopped", "waiting"):
        summary.outcome = "stopped"
        err = "; ".join(f"breaker: {t['page_id']}: {t['refusals']} of {t['rule']} {t['attempts']} "
                        f"attempts refused with {t['code']}: {t['cause']}" for t in summary.breaker)
        hint = ("nothing was marked and the page's sends stay planned; "
                + "; ".join(t["check"] for t in summary.breaker))
        summary.error = f"{summary.error}; {err}" if summary.error else err
        summary.hint = f"{summary.hint} {hint}" if summary.hint else hint
    if summary.outcome == "done":
        broken = [c for c in run.campaigns.values() if c.state == "failed" and ledger.open_count(c.key)
                  and not (c.reason or "").startswith("breaker:")]
        if broken:
            summary.outcome = "stopped"
            summary.error = "; ".join(f"campaign {c.key} {c.name!r} could not be set up: {c.error}"
                                      for c in broken)
            summary.hint = "its sends stay planned: fix the cause, then run the same command again"
    summary.ledger = ledger.counts()
    summary.reasons = ledger.reasons()
    if summary.outcome == "done" and summary.ledger.get("planned"):
        if not summary.waiting_for and opts.batches:     # sends remain: never say "done"
            summary.waiting_for = f"the next run (this one was bounded by --batches {opts.batches})"
        summary.outcome = "waiting" if summary.waiting_for else "done"
    ledger.set_status({"done": "done" if not summary.ledger.get("planned") else "waiting"}.get(
        summary.outcome, summary.outcome))
    if recorder is not None:
        summary.dry_run = {**recorder.to_json(), "already": ex.already or {}}


def _wind_down(ex: _Execution) -> None:
    """Wind-down, second half (always, even when a step raised): time, run record, lock, scratch.

    The run history gets its outcome and summary, the lock is released and a dry run's scratch
    ledger dropped, so a crash inside the run never leaves the workspace held by a live process.
    """
    summary = ex.summary
    summary.elapsed_seconds = round(time.monotonic() - ex.t0, 3)
    if summary.elapsed_seconds > 0:
        summary.rate_per_second = round(summary.attempted / summary.elapsed_seconds, 1)
    if ex.run_id is not None:
        runs.finish(ex.ws.conn, ex.run_id, summary.outcome, json.dumps(summary.to_json()), now=int(ex.clock()))
    if ex.lock is not None:
        ex.lock.release()
    if not ex.opts.execute:
        ex.ledger.close_scratch()


def execute_plan(ws, plan, *, execute: bool = False, transport=None, base_url: str | None = None,
                 access_token: str | None = None, token_file: str | None = None, options: ExecOptions | None = None,
                 clock=time.time, sleep=None, notify: Callable[[str], None] = lambda m: None,
                 progress: Callable[[int], None] = lambda n: None, handle_signals: bool = False,
                 rules=None, http: str = "auto", **kw: Any) -> ExecutionSummary:
    """Run a saved plan (`plan`: SavedPlan or path) and return an ExecutionSummary.

    Without `execute` it is a dry run: the recording transport answers, a scratch ledger records,
    the workspace is left as it was. With it: `transport` (e.g. the in-process emulator's) or
    `base_url` (default Meta's), and the access token from `access_token`, `token_file` or
    MIGRATOR_ACCESS_TOKEN. `handle_signals`: SIGINT/SIGTERM finish in-flight requests and stop.
    `http` (when no `transport` is given): "httpx" (httpx's own stack), "fast" (the lean HTTP/1.1
    transport in execute/http.py, ~3x less CPU per send) or "auto" (default): fast for plain-http
    rehearsals against the emulator, httpx for https, i.e. Meta, where the round trip, not CPU,
    bounds throughput and the well-proven stack is worth more.
    Other keyword arguments set ExecOptions fields (concurrency=64, rate=500, batches=1, wait=False...).
    """
    from migrator.graph import DEFAULT_BASE_URL, load_access_token

    opts = options or ExecOptions(execute=execute, **kw)
    opts.execute = execute
    recorder = None
    if not execute:
        recorder = RecordingTransport()
        transport, token = recorder, "dry-run"
        # a dry run does not wait for the schedule: it looks at the plan as if every send were due
        loaded = _load_plan(ws, plan)
        plan = loaded
        last = max((b.not_before for b in loaded.batches), default=0)
        base_clock = clock
        clock = lambda: max(base_clock(), float(last) + 1)  # noqa: E731
        opts.wait = False
    else:
        token = access_token or load_access_token(token_file=token_file)

    async def main() -> ExecutionSummary:
        stop = asyncio.Event()
        signal_box: dict = {}
        loop = asyncio.get_running_loop()
        installed = []
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, _on_signal, stop, notify, sig, signal_box)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):
                    pass
        own = None
        base = base_url or DEFAULT_BASE_URL
        if http == "auto":
            use_fast = base.startswith("http://")
        else:
            use_fast = http == "fast"
        if transport is None and use_fast:
            from migrator.execute.http import FastTransport

            own = transport_ = FastTransport(max_connections=max(1, opts.concurrency))
        else:
            transport_ = transport
        client = AsyncGraphClient(token, base_url=base, transport=transport_,
                                  max_connections=max(1, opts.concurrency), retry=NO_RETRY)
        try:
            return await execute_plan_async(ws, plan, client=client, opts=opts, clock=clock,
                                            sleep=sleep or asyncio.sleep, notify=notify, progress=progress,
                                            stop=stop, rules=rules, recorder=recorder, signal_box=signal_box)
        finally:
            await client.aclose()
            if own is not None:
                await own.aclose()
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


def _on_signal(stop: asyncio.Event, notify, sig, box: dict) -> None:
    box.setdefault("signal", signal.Signals(sig).name)
    if not stop.is_set():
        notify(f"{signal.Signals(sig).name}: finishing the requests in flight, then stopping")
    stop.set()


__all__ = ["ExecOptions", "ExecutionSummary", "execute_plan", "execute_plan_async"]

"""What one run of the executor is told (`ExecOptions`) and what it says back (`ExecutionSummary`).

Plain data, shared by the engine, the send loop and the CLI, and free of imports from the rest of
execute/: a dry run's summary is given its own "would_*" names here, so no reader of its JSON can
take a rehearsal for what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ExecOptions:
    execute: bool = False
    batches: int | None = None          # at most this many batches (from the first with unsent rows)
    concurrency: int = 64              # the most requests in flight; the adaptive limit (pacing.py) stays below it
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
    in_flight_limit: dict = field(default_factory=dict)   # the adaptive limit: max, final, lowest, decreases
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


# A dry run's counts under names no reader can take for what happened: "would_send", never "sent".
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

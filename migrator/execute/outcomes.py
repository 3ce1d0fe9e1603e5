"""What one send's answer means for the ledger: the error class -> a transition (Meta's MM error table:
https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/api-reference).

`decide()` is pure: the engine applies its verdict (ledger row, campaign, pacing, the run).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from migrator.graph import ErrorClass, GraphError, NetworkError
from migrator.preflight.guidance import SETUP_STOPS

# recipient never: what tokens.mm_state learns (the audit reads it next time)
# (2300004 and 2300005 are not here: they can mean a setup fault, see SUSPECT_CODES and breaker.py)
MM_STATE_BY_CODE = {2300034: "opted_out", 2300032: "wrong_region",
                    2300037: "expired", 1893015: "opted_out", 551: "opted_out"}
# recipient-level refusals that are suspect until shown per recipient (default of rules breaker_codes)
SUSPECT_CODES = frozenset({2300004, 2300005})
DAILY_BUDGET_CODE = 2300054
RECIPIENT_LATER_LIMIT = 4          # a send still refused "not now" at its 4th request is skipped
DEFAULT_RECIPIENT_WAIT = 12 * 3600  # MM cadence; the engine passes rules.mm_cadence_hours
CADENCE_CODE = 2300035              # minimum delay between messages not reached
START_TIME_CODE = 2300033           # the campaign's start time is in the future: only that campaign waits

# What a "retry later" concerns. Rate limits of the app, the ad account or the Page (GRL, MRL,
# Meta's rate-limiting pages: 4, 17, 32, 341, 613, the BUC 80000-80014 family, MM's own 2300078-2300080)
# slow every
# send down: they pause the whole run. Other MM "can't send now / pacing" codes (23000xx) are answers
# about one campaign's delivery: only that campaign waits. Anything else (code 1 or 2, a transient 503
# envelope, unknown transient codes) concerns that one request: it alone is retried after a backoff.
THROTTLE_CODES = frozenset({4, 17, 32, 341, 613, 2300078, 2300079, 2300080, *range(80000, 80015)})


@dataclass(frozen=True)
class Verdict:
    kind: str        # unknown | retry | warmup | later | never | suspect | stop_campaign | pause_campaign
                     # | fix_payload | stop_page | fatal | failed
    state: str       # ledger state for the row: planned | unknown | failed | skipped
    reason: str
    wait: float | None = None          # seconds before the row (or its campaign, or everything) may go again
    scope: str = "request"             # what waits: request (this row) | campaign | all (every send)
    mm_state: str | None = None
    attempted: bool = True
    meta_wait: bool = False            # `wait` is Meta's own figure (error_data.remaining_seconds)

    @property
    def throttle(self) -> bool:
        """Pause every send, not just this row or campaign."""
        return self.scope == "all"


def error_code(err: GraphError) -> int | None:
    return err.mm_code or err.subcode or err.code


def meta_seconds(err: GraphError) -> float | None:
    """Meta's own wait (`error_data.remaining_seconds`), when it gave one: it wins over the table's floor."""
    r = getattr(err, "remaining_seconds", None)
    return float(r) if r is not None and r > 0 else None


def retry_scope(err: GraphError) -> str:
    """all | campaign | request: what a retry-later error concerns (see THROTTLE_CODES)."""
    if isinstance(err, NetworkError):
        return "all" if err.kind == "http_429" else "request"
    codes = {c for c in (err.code, err.subcode, err.mm_code) if c is not None}
    if codes & THROTTLE_CODES:
        return "all"
    if err.mm_code is not None:
        return "campaign"
    return "request"


def backoff(attempt: int, *, base: float = 2.0, cap: float = 600.0, rng: random.Random | None = None) -> float:
    """Bounded, jittered exponential backoff (seconds) for the n-th retry."""
    r = (rng or random).uniform(0.5, 1.0)
    return min(cap, base * 2 ** max(0, attempt - 1)) * r


def decide(err: GraphError, *, attempts: int, warmup_codes: frozenset[int], campaign_age: float,
           warmup_limit: float, max_attempts: int = 10,
           rng: random.Random | None = None, recipient_wait: float = DEFAULT_RECIPIENT_WAIT,
           suspect_codes: frozenset[int] = SUSPECT_CODES) -> Verdict:
    """The transition for a failed send. `attempts` counts requests already made for the row, this one included."""
    code = error_code(err)
    if isinstance(err, NetworkError):
        if err.ambiguous:   # the request may have reached Meta: never resend blindly
            return Verdict("unknown", "unknown", f"ambiguous:{err.kind}")
        if err.classification.error_class is ErrorClass.FIX_PAYLOAD:
            return Verdict("failed", "failed", f"http:{err.kind}")
        if attempts >= max_attempts:
            return Verdict("failed", "failed", "retries_exhausted")
        return Verdict("retry", "planned", f"retry:{err.kind}", wait=max(err.wait_seconds or 0,
                                                                          backoff(attempts, rng=rng)),
                       scope=retry_scope(err))
    cls = err.error_class
    if code in SETUP_STOPS and cls is ErrorClass.ACCOUNT_FATAL:
        # a set-up refusal (terms, payment, region, permission): the page can't send until a person fixes
        # it. Stop the page, keep the row planned for the run after the fix; never blame the subscriber.
        return Verdict("stop_page", "planned", f"setup:{code}")
    meta = meta_seconds(err)
    is_warmup = (code in warmup_codes or err.classification.warmup) and campaign_age <= warmup_limit
    if is_warmup:   # the engine polls on its own backoff; Meta's figure, when given, is honoured
        return Verdict("warmup", "planned", f"warmup:{code}", wait=meta, attempted=False, scope="campaign",
                       meta_wait=meta is not None)
    if cls is ErrorClass.RETRY_LATER:
        if attempts >= min(max_attempts, err.classification.max_attempts or max_attempts):
            return Verdict("failed", "failed", "retries_exhausted")
        scope = "campaign" if code == START_TIME_CODE else retry_scope(err)
        # Meta's figure wins (a 2300078 saying 3 s pauses 3 s); the table's floor only where Meta gave none
        wait = meta if meta is not None else max(err.wait_seconds or 0, backoff(attempts, rng=rng))
        return Verdict("retry", "planned", f"retry:{code}", wait=wait, scope=scope, meta_wait=meta is not None)
    if cls is ErrorClass.RECIPIENT_LATER:
        if attempts >= RECIPIENT_LATER_LIMIT:
            return Verdict("failed", "skipped", "recipient_unavailable")
        wait = meta or err.wait_seconds or recipient_wait
        if code == CADENCE_CODE:   # the per-token cadence in force (rules mm_cadence_hours)
            wait = max(wait, recipient_wait)
        return Verdict("later", "planned", f"recipient_later:{code}", wait=wait,
                       meta_wait=meta is not None and wait == meta)
    if cls is ErrorClass.RECIPIENT_NEVER and code in suspect_codes:
        # never marks the token on its own: suspect until a success on the page (breaker.py)
        return Verdict("suspect", "failed", f"suspect:{code}")
    if cls is ErrorClass.RECIPIENT_NEVER:
        state = MM_STATE_BY_CODE.get(err.mm_code or -1) or MM_STATE_BY_CODE.get(err.subcode or -1) \
            or MM_STATE_BY_CODE.get(err.code or -1) or "invalid"
        return Verdict("never", "failed", f"recipient_never:{state}", mm_state=state)
    if cls is ErrorClass.STOP_CAMPAIGN:
        if code == DAILY_BUDGET_CODE:
            return Verdict("pause_campaign", "planned", "daily_budget_reached", attempted=True, scope="campaign")
        return Verdict("stop_campaign", "skipped", f"campaign_stopped:{code}")
    if cls is ErrorClass.FIX_PAYLOAD:
        return Verdict("fix_payload", "failed", f"fix_payload:{code}")
    return Verdict("fatal", "planned", f"account_fatal:{code}", attempted=True)

"""The circuit breaker: a burst of one recipient-level refusal on a page is a setup fault, not a dead estate.

2300004 reads "could not be loaded ... or you may not have permissions": a missing Page
permission answers it for *every* token, and marking each one invalid would wipe the estate
from every later plan. So refusals of the rules' `breaker_codes` are recorded as `suspect`
(mm_feedback state 'suspect', ledger failed(`suspect:<code>`)), and:

- when, on one page, refusals of one code reach `breaker_early_refusals` of the first
  `breaker_early_attempts` attempts, or `breaker_window_percent` % of the last
  `breaker_window_attempts` (distinct tokens; successes and recipient-level refusals count as
  attempts), the breaker trips: the page's campaigns stop with their sends left planned (the
  same command resumes after the fix), the refusals it counted go back to planned, nothing is
  marked, and the run says the likely cause and how to check it;
- otherwise a later success on the same page shows its setup is fine: the suspect refusals
  recorded before it become what the code says (`promote`: 2300004 -> invalid, 2300005 ->
  page_mismatch, which the audit turns into a finding naming the page, never 'invalid').

`PageBreaker` / `Breaker.observe` are pure; `promote`, `hold` and `feedback` are the SQL edges.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

# what a confirmed (per-recipient) refusal of a breaker code means for mm_feedback
CONFIRMED_STATE = {2300004: "invalid", 2300005: "page_mismatch"}
# tokens.mm_state knows only these (the older place the audit reads; mm_feedback is the new one)
TOKEN_MM_STATES = ("opted_out", "invalid", "wrong_region", "expired")

SETUP_CAUSES = {
    2300004: ("Meta could not load these subscription tokens for page {page}, or the access token may not "
              "have permission on the page (error 2300004's own words)",
              "check that the system user behind the access token is assigned to page {page} with "
              "pages_messaging, ads_management and paid_marketing_messages (or marketing_messages_messenger); "
              "check that the tokens were pulled for this page by this app (`migrator pull tokens --page-id "
              "{page}`); then run the same command again: the page's sends are still planned"),
    2300005: ("the subscription tokens do not belong to page {page} (error 2300005): the token file likely "
              "files them under the wrong page",
              "check the page_id column of the token file(s) ingested for page {page} against the pages the "
              "tokens came from; fix and re-ingest, re-run the audit, make a new plan"),
}
_GENERIC = ("a burst of error {code} on page {page} looks like a setup fault, not {n} bad subscribers",
            "check the page's setup for error {code} (see `migrator graph errors`), then run the same command again")


@dataclass(frozen=True)
class Thresholds:
    codes: frozenset[int]
    early_refusals: int = 20
    early_attempts: int = 50
    window_percent: int = 30
    window_attempts: int = 200

    @classmethod
    def from_rules(cls, rules) -> "Thresholds":
        return cls(frozenset(rules.breaker_codes.value), rules.breaker_early_refusals.value,
                   rules.breaker_early_attempts.value, rules.breaker_window_percent.value,
                   rules.breaker_window_attempts.value)


@dataclass(frozen=True)
class Trip:
    page_id: str
    code: int
    refusals: int
    attempts: int
    rule: str                 # which threshold: "first N" or "sliding window"
    cause: str
    check: str

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        return (f"page {self.page_id}: {self.refusals} of {self.rule} {self.attempts} attempts refused with "
                f"{self.code}; the likely cause: {self.cause}")


@dataclass
class PageBreaker:
    """Counts on one page: the first attempts and a sliding window, each over distinct tokens."""

    th: Thresholds
    first_tokens: set = field(default_factory=set)
    first: Counter = field(default_factory=Counter)
    window: deque = field(default_factory=deque)
    window_tokens: Counter = field(default_factory=Counter)
    window_codes: Counter = field(default_factory=Counter)
    tripped: Trip | None = None

    def observe(self, page_id: str, token_id: int, code: int | None) -> Trip | None:
        """One answer for a token of this page: None (a success) or a recipient-level code."""
        hit = code if code in self.th.codes else None
        if len(self.first_tokens) < self.th.early_attempts and token_id not in self.first_tokens:
            self.first_tokens.add(token_id)
            if hit is not None:
                self.first[hit] += 1
                if self.first[hit] >= self.th.early_refusals and self.tripped is None:
                    self.tripped = self._trip(page_id, hit, self.first[hit], len(self.first_tokens), "the first")
        if token_id not in self.window_tokens:
            self.window.append((token_id, hit))
            self.window_tokens[token_id] += 1
            if hit is not None:
                self.window_codes[hit] += 1
            if len(self.window) > self.th.window_attempts:
                old_t, old_c = self.window.popleft()
                self.window_tokens[old_t] -= 1
                if not self.window_tokens[old_t]:
                    del self.window_tokens[old_t]
                if old_c is not None:
                    self.window_codes[old_c] -= 1
            if hit is not None and len(self.window) >= self.th.window_attempts and self.tripped is None \
                    and self.window_codes[hit] * 100 >= self.th.window_percent * len(self.window):
                self.tripped = self._trip(page_id, hit, self.window_codes[hit], len(self.window), "the last")
        return self.tripped

    @staticmethod
    def _trip(page_id: str, code: int, n: int, of: int, rule: str) -> Trip:
        cause, check = SETUP_CAUSES.get(code, _GENERIC)
        fmt = {"page": page_id, "code": code, "n": n}
        return Trip(page_id, code, n, of, rule, cause.format(**fmt), check.format(**fmt))


class Breaker:
    """One run's breakers, per page, plus when each page last had a success (for `promote`)."""

    def __init__(self, th: Thresholds):
        self.th = th
        self.pages: dict[str, PageBreaker] = {}
        self.last_success: dict[str, int] = {}
        self.suspects: set[str] = set()     # pages with suspect refusals not yet promoted

    def watches(self, code: int | None) -> bool:
        return code in self.th.codes

    def tripped(self, page_id: str) -> Trip | None:
        b = self.pages.get(page_id)
        return b.tripped if b else None

    def observe(self, page_id: str, token_id: int, code: int | None, now: float) -> Trip | None:
        """Returns the Trip the first time the page's breaker trips."""
        b = self.pages.get(page_id)
        if b is None:
            b = self.pages[page_id] = PageBreaker(self.th)
        was = b.tripped
        if code is None:
            self.last_success[page_id] = int(now)
        elif code in self.th.codes:
            self.suspects.add(page_id)
        trip = b.observe(page_id, token_id, code)
        return trip if trip is not None and was is None else None

    # ------------------------------------------------------------------ SQL edges
    def promote(self, conn, table: str, plan_id: str, campaigns_of: dict[str, list[str]]) -> int:
        """Suspect refusals on pages with a later success (and no trip) become what their code says."""
        n = 0
        for page in list(self.suspects):
            at = self.last_success.get(page)
            if at is None or self.tripped(page) is not None:
                continue
            keys = campaigns_of.get(page, [])
            if not keys:
                continue
            marks = ",".join("?" * len(keys))
            rows = conn.execute(
                f"SELECT send_id, token_id, error_code FROM {table} WHERE plan_id = ? AND state = 'failed' "
                f"AND reason LIKE 'suspect:%' AND campaign_key IN ({marks}) AND updated_at <= ?",
                (plan_id, *keys, at)).fetchall()
            for send_id, token_id, code in rows:
                state = CONFIRMED_STATE.get(code, "invalid")
                mm = state if state in TOKEN_MM_STATES else None
                conn.execute(f"UPDATE {table} SET reason = ?, mm_state = COALESCE(?, mm_state), "
                             "mm_applied = CASE WHEN ? IS NULL THEN mm_applied ELSE 0 END "
                             "WHERE plan_id = ? AND send_id = ?",
                             (f"recipient_never:{state}", mm, mm, plan_id, send_id))
                if table.startswith("main."):
                    conn.execute("UPDATE mm_feedback SET state = ? WHERE token_id = ? AND state = 'suspect'",
                                 (state, token_id))
            n += len(rows)
            self.suspects.discard(page)
        return n


def hold(conn, table: str, plan_id: str, campaign_keys: list[str], code: int, now: float) -> int:
    """A tripped page: its refusals of `code` recorded in this plan go back to planned (not proof of anything)."""
    if not campaign_keys:
        return 0
    marks = ",".join("?" * len(campaign_keys))
    cur = conn.execute(
        f"UPDATE {table} SET state = 'planned', reason = ?, not_before = ?, updated_at = ? WHERE plan_id = ? "
        f"AND state = 'failed' AND reason = ? AND campaign_key IN ({marks})",
        (f"breaker_held:{code}", int(now), int(now), plan_id, f"suspect:{code}", *campaign_keys))
    return cur.rowcount


def feedback(conn, plan_id: str, suspects: list[tuple[int, int, int, int]], successes: list[int]) -> None:
    """mm_feedback: suspect refusals (token_id, code, send_id, at) never overwrite a firmer state; a
    success clears the token's suspect row (it can be loaded, on this page)."""
    if suspects:
        conn.executemany(
            "INSERT INTO mm_feedback (token_id, state, code, class, seen_at, plan_id, send_id) "
            "VALUES (?, 'suspect', ?, 'recipient_never', ?, ?, ?) "
            "ON CONFLICT(token_id) DO UPDATE SET code = excluded.code, seen_at = excluded.seen_at, "
            "plan_id = excluded.plan_id, send_id = excluded.send_id WHERE mm_feedback.state = 'suspect'",
            [(t, c, at, plan_id, s) for t, c, s, at in suspects])
    if successes:
        conn.executemany("DELETE FROM mm_feedback WHERE token_id = ? AND state = 'suspect'",
                         [(t,) for t in successes])


__all__ = ["Breaker", "PageBreaker", "Thresholds", "Trip", "hold", "feedback", "CONFIRMED_STATE", "SETUP_CAUSES"]

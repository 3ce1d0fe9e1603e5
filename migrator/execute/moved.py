"""Who has already moved to MM: the executor's answer for the planner (set-based SQL).

A subscription has moved when Meta accepted an MM send to it (ledger state `sent`, in any plan
of the workspace's ledger `main.exec_sends`; dry runs keep their own ledger and never count), or
to another token of the same person (same page + PSID). A plan made again after a cutover
leaves those people out (`already_moved`), so its cost and budget do not count them and a
changed message cannot reach them a second time. The claim-time check `sent_by_another_plan`
(`execute/sendable.py`) stays the second guard for sends accepted after a plan was made.

Only `sent` counts: an `unknown` row may or may not have reached the person; the executor
settles it from receipts or leaves it to `--resend-unknown`, and the claim-time checks hold
a new plan's send back from it.
"""

from __future__ import annotations

import sqlite3

from migrator.store.digest import sha


def moved_sql(token: str = "t") -> str:
    """SQL boolean over a `tokens` row aliased `token` (id, page_id, psid): it has moved to MM.

    Two index seeks per token (`exec_sends_token`, `tokens_person`): joins over millions of rows
    stay set-based, no Python loop.
    """
    return (f"(EXISTS (SELECT 1 FROM main.exec_sends mv_e WHERE mv_e.token_id = {token}.id"
            f" AND mv_e.state = 'sent')"
            f" OR ({token}.psid IS NOT NULL AND EXISTS (SELECT 1 FROM main.tokens mv_t"
            f" JOIN main.exec_sends mv_e ON mv_e.token_id = mv_t.id"
            f" WHERE mv_t.page_id = {token}.page_id AND mv_t.psid = {token}.psid AND mv_t.id != {token}.id"
            f" AND mv_e.state = 'sent')))")


def moved_digest(conn: sqlite3.Connection) -> tuple[int, str]:
    """(accepted sends in the ledger, a checksum of which): what `moved_sql` answers from.

    The planner names a plan made after sends were accepted differently from the plan the same
    inputs gave before (the plans' rows differ, and the earlier plan's ledger must keep its rows).
    Accepted sends only ever grow (`sent` is final), so count and token sums identify the set.
    """
    row = conn.execute(
        "SELECT COUNT(*), TOTAL(token_id), TOTAL((token_id % 1000003) * (token_id % 999983))"
        " FROM main.exec_sends WHERE state = 'sent'").fetchone()
    return int(row[0]), sha("moved/1", list(row))


__all__ = ["moved_digest", "moved_sql"]

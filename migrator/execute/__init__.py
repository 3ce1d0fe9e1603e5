"""The executor: run a saved plan's sends exactly once, resumable and crash-safe.

Public API:
- `execute_plan(ws, plan, *, execute, transport | base_url, ...) -> ExecutionSummary` (sync);
  `execute_plan_async(...)`; `ExecOptions`. A stale plan is refused by `plan.check_fresh`.
- `remaining_sends(ws, plan) -> int`: what remains to send of a plan (sizes a progress bar).
- `ingest_receipts(ws, paths) -> IngestSummary`: MM webhooks settle unknown sends, fill delivered/read.
- `execution_status(ws, plan_id=None) -> ExecutionStatus`: per plan, campaign and batch counts.
- `moved_sql(alias)` / `moved_digest(conn)`: who already has an MM send accepted by Meta (the
  planner leaves them out as `already_moved`; execute/moved.py).
- `acquire` / `read_lock` / `force_unlock`: the one-executor-per-workspace lock.
Modules: ledger (tables, transitions, group commits, receipts settling rows), runs (run history), lock, campaigns (idempotent setup),
engine (entry points: setup, send loop, wind-down), loop (producer and workers), send (one send and
its answer), summary (ExecOptions, ExecutionSummary), outcomes (error class -> transition), pacing, receipts, transport
(dry-run recording transport), status. See docs/execute.md.
"""

from migrator.execute.engine import execute_plan, execute_plan_async
from migrator.execute.lock import LockInfo, acquire, force_unlock, read_lock
from migrator.execute.moved import moved_digest, moved_sql
from migrator.execute.receipts import ingest_receipts
from migrator.execute.status import ExecutionStatus, execution_status
from migrator.execute.summary import ExecOptions, ExecutionSummary
from migrator.execute.transport import RecordingTransport

__all__ = ["ExecOptions", "ExecutionStatus", "ExecutionSummary", "LockInfo", "RecordingTransport", "acquire",
           "execute_plan", "execute_plan_async", "execution_status", "force_unlock", "ingest_receipts",
           "moved_digest", "moved_sql", "read_lock", "remaining_sends"]


def remaining_sends(ws, plan) -> int:
    """Sends of `plan` (a SavedPlan) that remain to send (ledger state `planned`)."""
    from migrator.execute.ledger import to_send

    return to_send(ws.conn, plan.plan_id, plan.sends)

"""The run history (`exec_runs`): one row per `execute --execute`, with how it ended.

`ended` is one of finished (the run stopped by itself: done, waiting, stopped, fatal),
interrupted (Ctrl-C, SIGTERM, lost lock, network down), killed (its process vanished: found by
the next run or by `status`), refused (stale plan, lock held: nothing was sent). `outcome` keeps
the summary's word (done | waiting | stopped | interrupted | fatal | killed | refused). The
execution report reads started_at, finished_at and outcome.
"""

from __future__ import annotations

import os
import socket

from migrator.execute.ledger import transaction

ENDED = {"done": "finished", "waiting": "finished", "stopped": "finished", "fatal": "finished",
         "interrupted": "interrupted", "killed": "killed", "refused": "refused"}


def start(conn, plan_id: str, *, now: int) -> int:
    with transaction(conn):
        return conn.execute("INSERT INTO exec_runs (plan_id, mode, started_at, pid, host, outcome) "
                            "VALUES (?, 'execute', ?, ?, ?, 'running')",
                            (plan_id, now, os.getpid(), socket.gethostname())).lastrowid


def finish(conn, run_id: int, outcome: str, summary_json: str, *, now: int) -> None:
    with transaction(conn):
        conn.execute("UPDATE exec_runs SET finished_at = ?, outcome = ?, ended = ?, summary = ? WHERE id = ?",
                     (now, outcome, ENDED.get(outcome, "finished"), summary_json, run_id))


def record_refused(conn, plan_id: str, why: str, *, now: int) -> None:
    """A run that was refused before it could send (stale plan, lock held) is history too."""
    import json

    with transaction(conn):
        conn.execute("INSERT INTO exec_runs (plan_id, mode, started_at, finished_at, pid, host, outcome, ended, "
                     "summary) VALUES (?, 'execute', ?, ?, ?, ?, 'refused', 'refused', ?)",
                     (plan_id, now, now, os.getpid(), socket.gethostname(), json.dumps({"error": why})))


def mark_killed(conn, *, own_pid: int) -> int:
    """Runs left unfinished are dead once this process holds the lock: mark them killed.

    Their end is the ledger's last write for the plan (the moment they last committed).
    """
    with transaction(conn):
        return conn.execute(
            "UPDATE exec_runs SET outcome = 'killed', ended = 'killed', finished_at = COALESCE("
            "(SELECT MAX(updated_at) FROM exec_sends e WHERE e.plan_id = exec_runs.plan_id), started_at) "
            "WHERE finished_at IS NULL AND NOT (pid = ? AND host = ?)",
            (own_pid, socket.gethostname())).rowcount


def unfinished(conn) -> list[tuple[int, str, int, str]]:
    """(id, plan_id, pid, host) of runs without an end (running, or killed and not yet noticed)."""
    return conn.execute("SELECT id, plan_id, pid, host FROM exec_runs WHERE finished_at IS NULL "
                        "ORDER BY id").fetchall()

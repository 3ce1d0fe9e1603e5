"""One executor per workspace: a lock row with owner, pid, host, start time and heartbeat.

A lock is stale when its process is dead on this host, or when its heartbeat is older than
`stale_after` seconds (a crashed run on another machine sharing the file). A stale lock is
taken over; a live one refuses with who holds it. `migrator unlock` removes it by hand.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import time
from dataclasses import dataclass

from migrator.errors import LockHeldError
from migrator.execute.ledger import transaction

STALE_AFTER = 120.0          # seconds without a heartbeat
HEARTBEAT_EVERY = 5.0


@dataclass(frozen=True)
class LockInfo:
    owner: str
    pid: int
    host: str
    started_at: int
    heartbeat_at: int
    plan_id: str | None

    def to_json(self) -> dict:
        return {"owner": self.owner, "pid": self.pid, "host": self.host, "started_at": self.started_at,
                "heartbeat_at": self.heartbeat_at, "plan_id": self.plan_id}

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        return f"{self.owner} (pid {self.pid} on {self.host}, since {started}, plan {self.plan_id})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(conn) -> LockInfo | None:
    row = conn.execute("SELECT owner, pid, host, started_at, heartbeat_at, plan_id FROM exec_lock").fetchone()
    return LockInfo(*row) if row else None


def staleness(info: LockInfo, *, now: float, stale_after: float = STALE_AFTER) -> str | None:
    """Why the lock is stale, or None if its holder looks alive."""
    if info.host == socket.gethostname() and not _pid_alive(info.pid):
        return f"process {info.pid} on {info.host} is gone"
    age = now - info.heartbeat_at
    if age > stale_after:
        return f"no heartbeat for {int(age)} s"
    return None


class WorkspaceLock:
    """Held while an executor runs; `heartbeat(conn)` is called inside the ledger's group commits."""

    def __init__(self, conn, nonce: str, *, clock=time.time):
        self.conn = conn
        self.nonce = nonce
        self.clock = clock
        self._last = clock()
        self.lost = False
        self.took_over: str | None = None

    def heartbeat(self, conn=None, *, force: bool = False) -> bool:
        """Refresh the heartbeat (at most every few seconds); False when the lock was taken from us."""
        now = time.time()
        if not force and now - self._last < HEARTBEAT_EVERY:
            return not self.lost
        self._last = now
        c = conn or self.conn
        cur = c.execute("UPDATE exec_lock SET heartbeat_at = ? WHERE nonce = ?", (int(now), self.nonce))
        if cur.rowcount == 0:
            self.lost = True
        return not self.lost

    def release(self) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM exec_lock WHERE nonce = ?", (self.nonce,))


def acquire(conn, plan_id: str | None, *, stale_after: float = STALE_AFTER) -> WorkspaceLock:
    """Take the workspace lock or raise LockHeldError naming the holder."""
    now = time.time()
    nonce = secrets.token_hex(8)
    took_over = None
    with transaction(conn):
        info = read_lock(conn)
        if info is not None:
            why = staleness(info, now=now, stale_after=stale_after)
            if why is None:
                raise LockHeldError(
                    f"another executor holds this workspace: {info.describe()}",
                    hint="wait for it to finish; if it is really gone, run `migrator unlock`")
            took_over = f"took over a stale lock of {info.describe()}: {why}"
            conn.execute("DELETE FROM exec_lock")
        host = socket.gethostname()
        try:
            user = getpass.getuser()
        except Exception:  # no user name in some containers
            user = "unknown"
        conn.execute("INSERT INTO exec_lock (id, owner, pid, host, started_at, heartbeat_at, plan_id, nonce) "
                     "VALUES (1, ?, ?, ?, ?, ?, ?, ?)", (f"{user}@{host}", os.getpid(), host, int(now), int(now),
                                                         plan_id, nonce))
    lock = WorkspaceLock(conn, nonce)
    lock.took_over = took_over
    return lock


def alive_here(info: LockInfo) -> bool:
    """The lock's process runs on this host right now."""
    return info.host == socket.gethostname() and _pid_alive(info.pid)


def holder_state(info: LockInfo, *, now: float) -> str:
    """running | interrupted (process gone) | stale (no heartbeat), for `status`."""
    if info.host == socket.gethostname():
        return "running" if _pid_alive(info.pid) else "interrupted (process gone)"
    return "stale (no heartbeat)" if staleness(info, now=now) else "running"


def force_unlock(conn) -> LockInfo | None:
    """Remove the lock (`migrator unlock`); returns what was removed.

    Refused while the lock's process is alive on this host: removing it would let a second
    executor start beside a live one (it stops at its next heartbeat, but rows it already claimed
    could be recovered and re-sent meanwhile). Stop that process instead (Ctrl-C / kill PID).
    """
    with transaction(conn):
        info = read_lock(conn)
        if info is not None and alive_here(info):
            raise LockHeldError(f"the executor holding this workspace is alive: {info.describe()}",
                                hint=f"stop it (Ctrl-C in its terminal, or `kill {info.pid}`; it finishes "
                                     "its requests and releases the lock); unlock is for dead runs")
        conn.execute("DELETE FROM exec_lock")
    return info

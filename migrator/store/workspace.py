"""Open/create the workspace database safely (0600, WAL, migrated, version-checked)."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import sqlite_utils

from migrator.errors import SchemaTooNewError, WorkspaceError
from migrator.store.schema import MIGRATIONS
from migrator.store.writeback import DISK_HINT, Writeback

DEFAULT_DB = "migration.db"
ENV_DB = "MIGRATOR_DB"


def resolve_db_path(explicit: str | os.PathLike | None = None) -> Path:
    """`--db` wins, then `MIGRATOR_DB`, then `./migration.db`."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_DB)
    return Path(env) if env else Path(DEFAULT_DB)


def _create_private(path: Path) -> None:
    """Create an empty file readable only by its owner, before SQLite ever touches it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (KeyboardInterrupt too).

    IMMEDIATE takes the write lock at once, so a second writer waits (busy_timeout) instead
    of failing halfway. The connection is in autocommit mode (isolation_level=None), so this
    is the only place a transaction starts; `Workspace.transaction()` is the usual entry.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        _rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if not disk_failed(exc):
            raise
        _rollback(conn)
        raise disk_error(exc) from None


def disk_failed(exc: BaseException) -> bool:
    """SQLITE_IOERR (any extended code) or SQLITE_FULL: the disk, not the SQL."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (10, 13)


def disk_error(exc: sqlite3.Error) -> WorkspaceError:
    """What to tell the user when SQLite said the disk failed (disk_failed) and the step rolled back."""
    return WorkspaceError(f"the disk reported an error while the workspace was written (SQLite: {exc}): "
                          "nothing of this step was kept", hint=DISK_HINT)


def _rollback(conn: sqlite3.Connection) -> None:
    """ROLLBACK, if a transaction is still open. A rollback that fails (the disk failing) must
    not replace the error that caused it: the hot journal is rolled back at the next open."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


@dataclass
class Workspace:
    """An open workspace: the sqlite-utils Database plus where it lives."""

    path: Path
    db: sqlite_utils.Database

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        """One write transaction on the workspace: `with ws.transaction() as conn: ...`."""
        return transaction(self.conn)

    @contextmanager
    def bulk_load(self) -> Iterator[bool]:
        """A rollback journal instead of WAL while a large file is loaded, when we are alone.

        WAL writes every new page twice (to the log, then at checkpoint); a rollback journal
        writes appended pages once, which measured a third less time on a 1M-event load. It
        stays crash-safe (synchronous=EXTRA while it lasts); the loader syncs the file as it goes
        (`writeback()`, inside its transaction) so the commit does not wait for all of it. The switch needs the file to
        ourselves: with any other connection open it is skipped at once (no busy wait) and
        the load runs in WAL as usual. Yields whether the switch happened; WAL comes back
        afterwards, and `open_workspace` restores it after a crash too.
        """
        conn = self.conn
        timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute("PRAGMA busy_timeout=0")
        try:
            switched = conn.execute("PRAGMA main.journal_mode=DELETE").fetchone()[0] == "delete"
        except sqlite3.OperationalError:  # another connection has the file open
            switched = False
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(timeout)}")
        if not switched:
            yield False
            return
        # EXTRA, not FULL: in rollback-journal mode FULL does not sync the directory after the
        # journal is deleted, so a power cut could bring the journal back and roll back a load
        # the user saw commit; EXTRA adds that one directory sync per commit
        conn.execute("PRAGMA main.synchronous=EXTRA")
        try:
            yield True
        finally:
            try:
                conn.execute("PRAGMA main.journal_mode=WAL")
                conn.execute("PRAGMA main.synchronous=NORMAL")
            except sqlite3.Error:  # the disk failing: the load's own error is the one to report,
                pass               # and open_workspace restores WAL at the next open

    def writeback(self) -> Writeback:
        """`with ws.writeback():` inside a bulk load's transaction: the file is synced as the load
        goes, and a write error a sync met fails the transaction (see store/writeback.py)."""
        return Writeback(self.path)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


SQLITE_MAGIC = b"SQLite format 3\x00"
_NEW_PATH = "use a new path for a new workspace, or --db PATH of an existing migrator workspace"


def _cannot_write(p: Path, why: str) -> WorkspaceError:
    return WorkspaceError(f"cannot write the workspace {p}: {why}",
                          hint="make the file and its folder writable, or use another --db")


def _check_path(p: Path, *, writing: bool) -> bool:
    """Check what `--db` names before anything touches it; True when it exists.

    Only a regular file (or a path where one can be made) may be a workspace: a directory,
    the current folder, a device such as /dev/null or a FIFO is refused before any chmod.
    A non-empty file must start with SQLite's magic header.
    """
    try:
        st = os.stat(p)
    except FileNotFoundError:
        folder = p.parent if str(p.parent) else Path(".")
        if writing and folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise _cannot_write(p, f"the folder {folder} is read-only")
        return False
    except OSError as exc:
        raise WorkspaceError(f"cannot use {p} as the workspace: {exc.strerror}", hint=_NEW_PATH) from None
    if stat.S_ISDIR(st.st_mode):
        raise WorkspaceError(f"{p} is a directory, not a workspace file",
                             hint="pass --db DIR/migration.db")
    if not stat.S_ISREG(st.st_mode):
        raise WorkspaceError(f"{p} is not a regular file (a device, socket or pipe)", hint=_NEW_PATH)
    if st.st_size:
        try:
            with open(p, "rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise WorkspaceError(f"cannot read the workspace {p}: {exc.strerror}") from None
        if head != SQLITE_MAGIC:
            raise WorkspaceError(f"{p} is not a migrator workspace (not a SQLite file)", hint=_NEW_PATH)
    if writing:
        if not os.access(p, os.W_OK):
            raise _cannot_write(p, "the file is read-only")
        folder = p.parent if str(p.parent) else Path(".")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise _cannot_write(p, f"its folder {folder} is read-only (SQLite keeps a journal beside it)")
    return True


def _check_ours(conn: sqlite3.Connection, p: Path) -> None:
    """A SQLite file with tables but no migrator schema belongs to someone else: refuse it
    rather than add our tables to it."""
    try:
        names = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        if not names:
            return  # an empty database (e.g. a new file): becomes a workspace
        table = MIGRATIONS.migrations_table
        if table in names and conn.execute(
                f"SELECT 1 FROM [{table}] WHERE migration_set = ? LIMIT 1", (MIGRATIONS.name,)).fetchone():
            return
    except sqlite3.DatabaseError as exc:
        if any(w in str(exc) for w in ("locked", "busy", "unable to open", "readonly", "read-only")):
            raise   # the caller says busy / cannot write: the file may well be a workspace
        raise WorkspaceError(f"{p} is not a migrator workspace (SQLite said: {exc})", hint=_NEW_PATH) from None
    raise WorkspaceError(f"{p} is not a migrator workspace; use a new path",
                         hint=f"it is a SQLite database with other tables ({', '.join(sorted(names)[:5])}); "
                              "migrator will not add its tables to it")


def open_workspace(path: str | os.PathLike | None = None, *, create: bool = True,
                   readonly: bool = False, busy_timeout: float = 30.0) -> Workspace:
    """Open (creating if needed) the workspace at `path` and bring its schema up to date.

    `--db` is checked before it is touched: only a regular SQLite file with
    our schema, an empty file, or a new path is opened, and only then tightened to 0600.
    With `create=False` nothing is created; with `readonly=True` (status, report) no
    migration runs either: a workspace whose schema is behind is refused with what to run.
    `busy_timeout` is how long to wait for another writer that holds the whole file (a
    large ingest loads with a rollback journal, see `Workspace.bulk_load`).
    """
    p = resolve_db_path(path)
    exists = _check_path(p, writing=not readonly)
    if not exists:
        if not create:
            raise WorkspaceError(
                f"no workspace at {p}",
                hint="run `migrator ingest ...` first, or pass --db PATH / set MIGRATOR_DB",
            )
        try:
            _create_private(p)
        except FileExistsError:  # created concurrently: fine
            pass
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise _cannot_write(p, exc.strerror) from None
            raise WorkspaceError(f"cannot create workspace {p}: {exc.strerror}") from None
    try:
        conn = sqlite3.connect(str(p), timeout=busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        _check_ours(conn, p)
        if exists and not readonly:
            # tighten a file that someone loosened, now that it is known to be ours
            try:
                if p.stat().st_mode & 0o077:
                    os.chmod(p, 0o600)
            except OSError:
                pass
        if not readonly:  # switching the journal mode writes the file's header
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc) or "read-only" in str(exc) or "unable to open" in str(exc):
            folder = p.parent if str(p.parent) else Path(".")
            if not os.access(folder, os.W_OK | os.X_OK):
                # even a report needs the WAL index (-shm) beside a WAL workspace
                raise _cannot_write(p, f"its folder {folder} is read-only (SQLite keeps a journal "
                                       "and the WAL index beside it)") from None
            raise _cannot_write(p, str(exc)) from None
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise WorkspaceError(f"{p} is not a migrator workspace (SQLite said: {exc})") from None
        raise WorkspaceError(
            f"{p} is busy: another migrator command holds it (a large ingest keeps the workspace "
            "to itself until it commits)",
            hint="wait for that command to finish, then run this one again",
        ) from None
    except sqlite3.DatabaseError as exc:
        raise WorkspaceError(
            f"{p} is not a migrator workspace (SQLite said: {exc})",
            hint="point --db at a workspace file, or at a new path to create one",
        ) from None
    db = sqlite_utils.Database(conn)
    _check_not_newer(db, p)
    pending = _pending(db)
    if readonly and len(pending) == len(MIGRATIONS._migrations):
        # nothing of ours in it at all: an empty file, not an old workspace
        what = "0 bytes" if p.stat().st_size == 0 else "a SQLite file with no tables"
        conn.close()
        raise WorkspaceError(
            f"{p} is empty ({what}): no migrator workspace has been set up in it yet",
            hint="point --db (or MIGRATOR_DB) at your workspace; to start a new one here, run "
                 "`migrator ingest pages|tokens FILE` first")
    if pending and readonly:
        raise WorkspaceError(
            f"{p} was written by an older migrator (schema steps {', '.join(pending[:3])}"
            f"{' ...' if len(pending) > 3 else ''} not applied); this command only reads it",
            hint="run a command that writes (e.g. `migrator audit`) to upgrade the workspace first")
    if pending:
        try:
            MIGRATIONS.apply(db)
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc):
                raise _cannot_write(p, str(exc)) from None
            raise WorkspaceError(f"cannot update the schema of {p}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"cannot update the schema of {p}: {exc}") from None
    for suffix in ("-wal", "-shm"):
        side = Path(str(p) + suffix)
        if side.exists():
            try:
                os.chmod(side, 0o600)
            except OSError:
                pass
    return Workspace(path=p, db=db)


def _pending(db: sqlite_utils.Database) -> list[str]:
    """Names of our schema steps not yet applied to `db` (all of them for a new file)."""
    try:
        applied = {m.name for m in MIGRATIONS.applied(db)}
    except sqlite3.DatabaseError:
        applied = set()
    return [m.name for m in MIGRATIONS._migrations if m.name not in applied]


def _check_not_newer(db: sqlite_utils.Database, path: Path) -> None:
    known = {m.name for m in MIGRATIONS._migrations}
    try:
        applied = [m.name for m in MIGRATIONS.applied(db)]
    except sqlite3.DatabaseError as exc:
        raise WorkspaceError(f"{path} is not a migrator workspace (SQLite said: {exc})") from None
    unknown = [n for n in applied if n not in known]
    if unknown:
        raise SchemaTooNewError(
            f"{path} was written by a newer migrator (schema steps {', '.join(unknown)} are "
            "unknown to this version)",
            hint="upgrade migrator (pip install -U migrator) or use another --db",
        )

"""A bulk load's file is synced as the load goes (store/writeback.py), through SQLite's own
descriptor, without loosening the load's lock on the file, and a write error one of those
syncs meets fails the load instead of being lost.

Write errors are injected at the OS boundary (os.fdatasync), the way Linux reports a failed
writeback: once, to the first sync after it. SQLite's own sync (libc) is not affected.
"""

import errno
import os
import subprocess
import sys
import threading

import pytest

from migrator.errors import WorkspaceError
from migrator.inventory import ingest_tokens
from migrator.store import open_workspace
from migrator.store.writeback import FD_DIR, Writeback

needs_proc = pytest.mark.skipif(not os.path.isdir(FD_DIR), reason="no /proc/self/fd here")

# another process, trying to take the write lock at once: what a second migrator command does
_TRY_WRITE = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
    "try:\n"
    "    c.execute('BEGIN IMMEDIATE')\n"
    "except sqlite3.OperationalError as e:\n"
    "    print('refused:', e)\n"
    "else:\n"
    "    print('got the lock')\n"
)


def _other_process_writes(path) -> str:
    return subprocess.run([sys.executable, "-c", _TRY_WRITE, str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()


def _insert(conn, n: int = 20_000) -> None:
    conn.executemany("INSERT INTO tokens (token, token_hash) VALUES (?, ?)",
                     ((f"T{i}", f"h{i}") for i in range(n)))


@needs_proc
def test_a_sync_during_a_bulk_load_finds_sqlites_descriptor_and_keeps_the_write_lock(tmp_path):
    p = tmp_path / "ws.db"
    ws = open_workspace(p)
    with ws.bulk_load() as switched, ws.transaction() as conn:
        assert switched
        _insert(conn)
        wb = Writeback(p)
        fd = wb.descriptor()
        assert fd is not None
        assert (os.fstat(fd).st_ino, os.fstat(fd).st_dev) == (os.stat(p).st_ino, os.stat(p).st_dev)
        assert wb.flush() and wb.flushes == 1
        # a descriptor opened and closed by us would have dropped SQLite's POSIX locks:
        # another process could then write into the middle of this transaction
        assert _other_process_writes(p).startswith("refused:")
    assert ws.conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 20_000
    assert ws.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ws.close()
    assert _other_process_writes(p) == "got the lock"


def test_a_file_no_descriptor_is_open_on_is_not_synced(tmp_path):
    p = tmp_path / "plain.db"
    p.write_bytes(b"x")
    wb = Writeback(p)
    assert wb.descriptor() is None
    assert wb.flush() is False and wb.flushes == 0 and wb.error is None
    assert Writeback(tmp_path / "missing.db").flush() is False


def _writeback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "migrator-writeback"]


@needs_proc
def test_the_sync_thread_runs_only_inside_the_block(tmp_path):
    ws = open_workspace(tmp_path / "ws.db")
    assert not _writeback_threads()
    with ws.bulk_load() as switched, ws.transaction(), ws.writeback() as wb:
        assert switched and len(_writeback_threads()) == 1
    assert not _writeback_threads() and wb.flushes >= 1  # the sync on leaving, at least
    # a load that raises stops it too, and WAL comes back
    with pytest.raises(RuntimeError), ws.bulk_load(), ws.transaction(), ws.writeback():
        raise RuntimeError("boom")
    assert not _writeback_threads()
    assert ws.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ws.close()


def test_without_proc_no_thread_is_started(tmp_path, monkeypatch):
    monkeypatch.setattr("migrator.store.writeback.FD_DIR", str(tmp_path / "no-proc"))
    ws = open_workspace(tmp_path / "ws.db")
    with ws.bulk_load() as switched, ws.transaction() as conn, ws.writeback():
        assert switched and not _writeback_threads()
        conn.execute("INSERT INTO tokens (token, token_hash) VALUES ('T', 'h')")
    assert ws.conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 1
    ws.close()


def _failing_fdatasync(code: int):
    def fdatasync(fd):
        raise OSError(code, os.strerror(code))
    return fdatasync


@needs_proc
@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC, errno.EDQUOT])
def test_a_write_error_a_sync_met_rolls_the_load_back(tmp_path, monkeypatch, code):
    """Found in review: the error was swallowed, SQLite's own sync at COMMIT (to which the
    kernel does not report it again) succeeded, and the load committed with pages missing."""
    ws = open_workspace(tmp_path / "ws.db")
    monkeypatch.setattr(os, "fdatasync", _failing_fdatasync(code))
    with pytest.raises(WorkspaceError, match="the disk reported an error") as caught:
        with ws.bulk_load(), ws.transaction() as conn, ws.writeback():
            _insert(conn)
    monkeypatch.undo()
    assert "run the command again" in caught.value.hint
    assert ws.conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0
    assert ws.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ws.close()


@needs_proc
def test_a_descriptor_closed_or_reused_is_not_a_write_error(tmp_path, monkeypatch):
    ws = open_workspace(tmp_path / "ws.db")
    monkeypatch.setattr(os, "fdatasync", _failing_fdatasync(errno.EBADF))
    with ws.bulk_load(), ws.transaction() as conn, ws.writeback() as wb:
        _insert(conn, 100)
    monkeypatch.undo()
    assert wb.error is None and wb.flushes == 0
    assert ws.conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 100
    ws.close()


@needs_proc
def test_a_large_ingest_that_meets_a_write_error_keeps_nothing(tmp_path, monkeypatch):
    rows = "".join(f"1,T{i:06d},Deals\n" for i in range(20_000))
    (tmp_path / "f.csv").write_text("page_id,token,topic_title\n" + rows)
    ws = open_workspace(tmp_path / "ws.db")
    monkeypatch.setattr(os, "fdatasync", _failing_fdatasync(errno.EIO))
    with pytest.raises(WorkspaceError, match="nothing of this load was kept"):
        ingest_tokens(ws, [tmp_path / "f.csv"], fmt="csv", workers=0, chunk_chars=50_000)
    monkeypatch.undo()
    assert ws.conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0
    assert ws.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ws.close()


@needs_proc
def test_the_sync_keeps_to_its_own_workspace_after_a_change_of_directory(tmp_path, monkeypatch):
    """Found in review: a relative path (--db ws.db, the default ./migration.db) was resolved
    again at every sync, so after a chdir the thread synced another open workspace."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    ws_a = open_workspace("ws.db")
    ws_b = open_workspace(tmp_path / "b" / "ws.db")
    fd_a = Writeback(tmp_path / "a" / "ws.db").descriptor()
    fd_b = Writeback(tmp_path / "b" / "ws.db").descriptor()
    assert None not in (fd_a, fd_b) and fd_a != fd_b
    synced: list[int] = []
    real = os.fdatasync
    with ws_a.bulk_load(), ws_a.transaction() as conn, Writeback(ws_a.path, interval=3600) as wb:
        _insert(conn, 100)
        os.chdir(tmp_path / "b")
        monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd))[1])
        assert wb.flush()
    monkeypatch.undo()
    assert synced and set(synced) == {fd_a}
    ws_a.close()
    ws_b.close()

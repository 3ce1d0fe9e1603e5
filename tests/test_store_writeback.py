"""A bulk load's file is synced as the load goes (store/writeback.py), through SQLite's own
descriptor, without loosening the load's lock on the file."""

import os
import subprocess
import sys
import threading

import pytest

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


@needs_proc
def test_a_sync_during_a_bulk_load_finds_sqlites_descriptor_and_keeps_the_write_lock(tmp_path):
    p = tmp_path / "ws.db"
    ws = open_workspace(p)
    with ws.bulk_load() as switched, ws.transaction() as conn:
        assert switched
        conn.executemany("INSERT INTO tokens (token, token_hash) VALUES (?, ?)",
                         ((f"T{i}", f"h{i}") for i in range(20_000)))
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
    assert wb.flush() is False and wb.flushes == 0
    assert Writeback(tmp_path / "missing.db").flush() is False


def _writeback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "migrator-writeback"]


@needs_proc
def test_the_sync_thread_runs_only_while_the_bulk_load_does(tmp_path):
    ws = open_workspace(tmp_path / "ws.db")
    assert not _writeback_threads()
    with ws.bulk_load() as switched:
        assert switched and len(_writeback_threads()) == 1
    assert not _writeback_threads()
    # a load that raises stops it too, and WAL comes back
    with pytest.raises(RuntimeError), ws.bulk_load():
        raise RuntimeError("boom")
    assert not _writeback_threads()
    assert ws.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ws.close()


def test_without_proc_no_thread_is_started(tmp_path, monkeypatch):
    monkeypatch.setattr("migrator.store.writeback.FD_DIR", str(tmp_path / "no-proc"))
    p = tmp_path / "ws.db"
    ws = open_workspace(p)
    with ws.bulk_load() as switched, ws.transaction() as conn:
        assert switched and not _writeback_threads()
        conn.execute("INSERT INTO tokens (token, token_hash) VALUES ('T', 'h')")
    assert ws.conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 1
    ws.close()

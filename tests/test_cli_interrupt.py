"""Ctrl-C ends a command with exit code 130, as PRODUCT.md's contract says, not click's
"Aborted!" and 1 ("the command ran but refused or failed" to a wrapper script). Found in review,
on a large (bulk-loaded) ingest through the real CLI: the load rolled back, WAL came back and
the file was intact, but the exit code was 1.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

from click.testing import CliRunner

from migrator.cli.common import EXIT_INTERRUPTED, MigratorGroup
from migrator.store import open_workspace


def test_a_keyboard_interrupt_in_any_command_exits_130_with_a_word_on_what_was_kept():
    group = MigratorGroup(name="m")

    @group.command()
    def work():
        raise KeyboardInterrupt

    r = CliRunner().invoke(group, ["work"])
    assert r.exit_code == EXIT_INTERRUPTED == 130
    assert "interrupted" in r.output and "Aborted!" not in r.output and "Traceback" not in r.output


def test_ctrl_c_during_a_bulk_load_exits_130_and_leaves_the_workspace_as_it_was(tmp_path):
    csv = tmp_path / "big.csv"
    with csv.open("w") as f:   # > 2 chunks (4 MiB each): the ingest bulk-loads it
        f.write("page_id,token,psid,topic_title,timezone,token_status,created_at,token_expiry\n")
        for i in range(150_000):
            f.write(f"1{i % 50},TK{i:09d},{10**15 + i},Deals,Europe/Paris,active,1654101006,1754101006000\n")
    db = tmp_path / "ws.db"
    open_workspace(db).close()   # an existing workspace: the only rollback journal is the bulk load's
    proc = subprocess.Popen(
        [sys.executable, "-m", "migrator", "--db", str(db), "ingest", "tokens", str(csv)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell's background job inherits SIGINT ignored; a person's terminal does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    journal, start = tmp_path / "ws.db-journal", db.stat().st_size
    deadline = time.monotonic() + 60
    # polling until the bulk load is under way: its rollback journal exists (the switch out of
    # WAL makes one briefly too) and the load has spilled a few MB of pages into the file
    while (not (journal.exists() and db.stat().st_size > start + (4 << 20)) and proc.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.005)
    assert proc.poll() is None, "the ingest finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    conn = sqlite3.connect(db)
    state = (conn.execute("PRAGMA journal_mode").fetchone()[0], conn.execute("PRAGMA integrity_check").fetchone()[0],
             conn.execute("SELECT count(*) FROM tokens").fetchone()[0])
    conn.close()
    assert "Traceback" not in err
    assert state == ("wal", "ok", 0)          # rolled back, WAL back, intact
    assert proc.returncode == 130, (proc.returncode, err)   # was 1 ("Aborted!")
    assert "interrupted" in err


def test_a_full_disk_mid_statement_is_one_error_line_not_a_traceback(tmp_path):
    """SQLITE_FULL (or an I/O error) raised by a statement inside any command: the transaction
    rolled back; the user reads what happened and what to do, exit 1."""
    import sqlite3

    group = MigratorGroup(name="m")

    @group.command()
    def fill():
        conn = sqlite3.connect(tmp_path / "small.db")
        conn.execute("PRAGMA max_page_count=3")   # a real SQLITE_FULL, as a full disk gives
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", (("x" * 1000,) for _ in range(100)))

    @group.command()
    def broken_sql():
        sqlite3.connect(":memory:").execute("SELECT * FROM nowhere")

    r = CliRunner().invoke(group, ["fill"])
    assert r.exit_code == 1 and "error: the disk reported an error" in r.output and "full" in r.output
    assert "hint: check the disk" in r.output and "Traceback" not in r.output
    # any other OperationalError is a bug, not the disk: it is not dressed up as one
    r = CliRunner().invoke(group, ["broken-sql"])
    assert isinstance(r.exception, sqlite3.OperationalError)

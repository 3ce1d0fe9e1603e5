"""The workspace file: created private, WAL, migrated, and refused when newer than us."""

import os
import sqlite3
import stat

import pytest

from migrator.errors import SchemaTooNewError, WorkspaceError
from migrator.store import open_workspace


def test_created_0600_and_wal(tmp_path):
    p = tmp_path / "sub" / "ws.db"
    w = open_workspace(p)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert w.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"tokens", "token_events", "pages", "contents", "rejects", "ingest_runs"} <= set(w.db.table_names())
    w.close()


def test_reopen_applies_nothing_new(tmp_path):
    p = tmp_path / "ws.db"
    open_workspace(p).close()
    w = open_workspace(p)
    names = [r[0] for r in w.conn.execute("SELECT name FROM _sqlite_migrations")]
    assert len(names) == len(set(names))
    w.close()


def test_newer_schema_is_refused(tmp_path):
    p = tmp_path / "ws.db"
    open_workspace(p).close()
    conn = sqlite3.connect(p)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('migrator', '9999_from_the_future', '2030-01-01')")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNewError, match="newer migrator"):
        open_workspace(p)


def test_not_a_database(tmp_path):
    p = tmp_path / "ws.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WorkspaceError):
        open_workspace(p)


def test_cli_newer_schema_exit_1_no_traceback(tmp_path, cli, db_path):
    open_workspace(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('migrator', '9999_x', '2030-01-01')")
    conn.commit()
    conn.close()
    csv = tmp_path / "t.csv"
    csv.write_text("page_id,token\n1,a\n")
    r = cli("ingest", "tokens", csv)
    assert r.exit_code == 1
    assert "newer migrator" in r.output
    assert "Traceback" not in r.output


def test_db_from_environment(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from migrator.cli import main

    target = tmp_path / "env.db"
    monkeypatch.setenv("MIGRATOR_DB", str(target))
    csv = tmp_path / "t.csv"
    csv.write_text("page_id,token\n1,a\n")
    r = CliRunner().invoke(main, ["ingest", "tokens", str(csv)])
    assert r.exit_code == 0, r.output
    assert target.exists()


def test_token_events_keep_their_rows_through_the_time_ordered_key_migration(tmp_path):
    """A workspace made before 0400 keeps its events; redelivering them is still a no-op."""
    import sqlite3

    import sqlite_utils

    from conftest import webhook, write_jsonl
    from migrator.inventory import ingest_tokens
    from migrator.store.schema import MIGRATIONS

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(sqlite3.connect(path))
    MIGRATIONS.apply(old, stop_before="0400_token_events_time_ordered_key")
    old.execute("INSERT INTO token_events (event_key, token, ts_ms, kind, data) VALUES"
                " ('k1', 'T', 1, 'optin', '{}'), ('k2', 'T', 2, 'stop', '{}')")
    old.conn.commit()
    assert "UNIQUE" in old.execute("SELECT sql FROM sqlite_master WHERE name = 'token_events'").fetchone()[0]
    old.close()

    ws = open_workspace(path)
    rows = ws.conn.execute("SELECT event_key, ts_ms FROM token_events ORDER BY ts_ms").fetchall()
    assert rows == [("k1", 1), ("k2", 2)]
    hooks = write_jsonl(tmp_path / "w.jsonl", [webhook("1", "u", "A", 1700000000000)] * 2)
    assert ingest_tokens(ws, [hooks]).accepted == 1
    f = ingest_tokens(ws, [hooks]).files[0]
    assert (f.accepted, f.duplicates) == (0, 2)
    ws.close()


def test_token_events_become_keyed_by_time_and_event_key_and_keep_every_row(tmp_path):
    """0600: token_events is rebuilt WITHOUT ROWID on (ts_ms, event_key) with all its rows;
    redeliveries stay duplicates and the stop screen's index is back."""
    import sqlite3

    import sqlite_utils

    from conftest import webhook, write_jsonl
    from migrator.inventory import ingest_tokens
    from migrator.store.schema import MIGRATIONS

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(sqlite3.connect(path))
    MIGRATIONS.apply(old, stop_before="0600_token_events_without_rowid")
    rows = [(f"k{i}", "T" if i % 2 else "U", "1", "u", 1700000000000 + 7 * (9 - i),
             ["optin", "stop", "resume"][i % 3], '{"a": %d}' % i, 3, "hooks.jsonl", i)
            for i in range(10)]
    old.conn.executemany("INSERT INTO token_events (event_key, token, page_id, psid, ts_ms, kind,"
                         " data, run_id, path, line) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    old.conn.commit()
    old.close()

    ws = open_workspace(path)
    sql = ws.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'token_events'").fetchone()[0]
    assert "WITHOUT ROWID" in sql and "PRIMARY KEY (ts_ms, event_key)" in sql
    got = ws.conn.execute("SELECT event_key, token, page_id, psid, ts_ms, kind, data, run_id, path,"
                          " line FROM token_events").fetchall()
    assert got == sorted(rows, key=lambda r: (r[4], r[0]))  # every row, in key order
    assert ws.conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'token_events'"
                           " AND type = 'index' AND sql IS NOT NULL").fetchall() == [("token_events_token",)]
    hooks = write_jsonl(tmp_path / "w.jsonl", [webhook("1", "u", "A", 1700000000000)] * 2)
    assert ingest_tokens(ws, [hooks]).accepted == 1
    f = ingest_tokens(ws, [hooks]).files[0]
    assert (f.accepted, f.duplicates) == (0, 2)
    assert ws.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    ws.close()


def test_a_workspace_held_by_a_bulk_load_is_reported_busy_not_broken(tmp_path):
    """Found in review: opening a workspace during a large ingest said 'not a migrator workspace'."""
    p = tmp_path / "ws.db"
    open_workspace(p).close()
    holder = sqlite3.connect(p, isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(WorkspaceError, match="is busy") as exc:
        open_workspace(p, busy_timeout=0.05)
    assert "wait" in exc.value.hint
    holder.execute("ROLLBACK")
    holder.close()
    w = open_workspace(p)
    assert w.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    w.close()


def test_a_bulk_load_commits_with_a_directory_sync(tmp_path):
    """Found in review: in rollback-journal mode synchronous=FULL does not sync the directory
    after deleting the journal, so a power cut could bring the journal back and roll back a
    load the user saw commit. EXTRA (3) adds that sync; WAL and NORMAL (1) come back after."""
    w = open_workspace(tmp_path / "ws.db")
    with w.bulk_load() as switched:
        assert switched
        assert w.conn.execute("PRAGMA main.journal_mode").fetchone()[0] == "delete"
        assert w.conn.execute("PRAGMA main.synchronous").fetchone()[0] == 3
    assert w.conn.execute("PRAGMA main.journal_mode").fetchone()[0] == "wal"
    assert w.conn.execute("PRAGMA main.synchronous").fetchone()[0] == 1
    w.close()

"""An empty `--db` file (0 bytes, or SQLite with no tables) is said to be empty, with what to do,
by the commands that only read; it was called "written by an older migrator"."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from migrator.cli import main


def _run(db, *args):
    return CliRunner().invoke(main, ["--db", str(db), *map(str, args)], catch_exceptions=False)


@pytest.fixture(params=["zero_bytes", "no_tables"])
def empty_db(request, tmp_path, monkeypatch):
    monkeypatch.delenv("MIGRATOR_DB", raising=False)
    db = tmp_path / "empty.db"
    if request.param == "zero_bytes":
        db.touch()
    else:
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE x (a)")
        con.execute("DROP TABLE x")
        con.commit()
        con.close()
    return db, request.param


@pytest.mark.parametrize("command", [("status",), ("status", "--json"), ("report", "audit", "-o", "r.html")])
def test_reading_commands_say_the_file_is_empty_and_what_to_do(empty_db, tmp_path, command):
    db, kind = empty_db
    before = db.read_bytes()
    args = [tmp_path / a if a.endswith(".html") else a for a in command]
    r = _run(db, *args)
    assert r.exit_code == 1, r.output
    what = "0 bytes" if kind == "zero_bytes" else "a SQLite file with no tables"
    assert f"empty.db is empty ({what}): no migrator workspace has been set up in it yet" in r.output
    assert "point --db (or MIGRATOR_DB) at your workspace" in r.output and "migrator ingest" in r.output
    assert "older migrator" not in r.output and "Traceback" not in r.output
    assert db.read_bytes() == before


def test_a_writing_command_still_makes_an_empty_file_a_workspace(empty_db, tmp_path):
    db, _ = empty_db
    pages = tmp_path / "pages.csv"
    pages.write_text("page_id,name,business_country,ad_account_id,currency\n123,Shop,US,111,USD\n")
    assert _run(db, "ingest", "pages", pages).exit_code == 0
    r = _run(db, "status")
    assert r.exit_code == 0 and "no plans in this workspace" in r.output, r.output

"""Issue 15, outputs and the workspace: nothing clobbered, atomic writes, `--db` checked first.

Real files in tmp_path: symlinks, directories, FIFOs, foreign SQLite files, read-only files.
Tests run as root here, where chmod cannot make a file read-only: the read-only cases use
`chattr +i` (immutable, which binds root too) and are skipped where that is unavailable.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrator.cli import main
from migrator.outputs import OutputError, write_text_safely
from migrator.store import open_workspace

REPO = Path(__file__).resolve().parent.parent


def run(*args, cwd=None, input=None):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, input=input)
    assert "Traceback" not in r.output
    return r


@pytest.fixture
def ws_path(tmp_path):
    db = tmp_path / "ws.db"
    csv = tmp_path / "t.csv"
    csv.write_text("page_id,token,country\n101,tokA,US\n101,tokB,BR\n")
    assert run("--db", db, "ingest", "tokens", csv).exit_code == 0
    assert run("--db", db, "audit").exit_code == 0
    return db


def _sha(p: Path) -> bytes:
    return p.read_bytes()


# --- 15.8 never clobber --------------------------------------------------------------------

def test_report_refuses_to_overwrite_the_workspace(ws_path):
    before = _sha(ws_path)
    r = run("--db", ws_path, "report", "audit", "-o", ws_path)
    assert r.exit_code == 1 and "it is the workspace" in r.output
    r = run("--db", ws_path, "report", "audit", "-o", ws_path, "--force")  # not even with --force
    assert r.exit_code == 1
    assert _sha(ws_path) == before
    con = sqlite3.connect(ws_path)
    assert con.execute("SELECT count(*) FROM tokens").fetchone()[0] == 2


def test_report_through_a_symlink_to_the_workspace_is_refused(ws_path, tmp_path):
    link = tmp_path / "innocent.html"
    link.symlink_to(ws_path)
    r = run("--db", ws_path, "report", "audit", "-o", link)
    assert r.exit_code == 1 and "workspace" in r.output
    assert ws_path.read_bytes()[:16] == b"SQLite format 3\x00"


def test_plan_refuses_to_overwrite_its_spec(ws_path, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text((REPO / "plans" / "sample.toml").read_text())
    before = spec.read_text()
    r = run("--db", ws_path, "plan", spec, "-o", spec, "--as-of", "2026-03-01")
    assert r.exit_code == 1 and "input of this command" in r.output
    assert spec.read_text() == before
    con = sqlite3.connect(ws_path)  # refused before anything was built or stored
    assert con.execute("SELECT count(*) FROM plans").fetchone()[0] == 0


def test_foreign_file_needs_force_and_ours_is_replaced(ws_path, tmp_path):
    out = tmp_path / "notes.html"
    out.write_text("<html>my own notes</html>")
    r = run("--db", ws_path, "report", "audit", "-o", out)
    assert r.exit_code == 1 and "did not write" in r.output and "--force" in r.output
    assert out.read_text() == "<html>my own notes</html>"
    assert run("--db", ws_path, "report", "audit", "-o", out, "--force").exit_code == 0
    assert 'content="migrator' in out.read_text()
    assert run("--db", ws_path, "report", "audit", "-o", out).exit_code == 0  # ours now: replaced


def test_readiness_csv_beside_is_checked_before_the_html_is_written(ws_path, tmp_path):
    out = tmp_path / "r.html"
    (tmp_path / "r.pages.csv").write_text("my,own\nspreadsheet,1\n")
    r = run("--db", ws_path, "report", "readiness", "-o", out)
    assert r.exit_code == 1 and "r.pages.csv" in r.output and not out.exists()


def test_output_naming_a_directory_is_one_clear_line(ws_path, tmp_path):
    r = run("--db", ws_path, "report", "audit", "-o", tmp_path)
    assert r.exit_code == 1 and "is a directory" in r.output


def test_sample_refuses_foreign_files_in_its_folder(tmp_path):
    out = tmp_path / "estate"
    out.mkdir()
    (out / "tokens.csv").write_text("precious,data\n")
    r = run("sample", "-o", out, "--tokens", "100", "--pages", "2")
    assert r.exit_code == 1 and "did not write" in r.output
    assert (out / "tokens.csv").read_text() == "precious,data\n"
    assert run("sample", "-o", out, "--tokens", "100", "--pages", "2", "--force").exit_code == 0
    assert run("sample", "-o", out, "--tokens", "100", "--pages", "2").exit_code == 0  # ours now


def test_demo_never_deletes_a_workspace_it_did_not_make(tmp_path, ws_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "migration.db").write_bytes(ws_path.read_bytes())
    r = run("demo", "-o", out)
    assert r.exit_code == 1 and "did not make" in r.output
    assert (out / "migration.db").read_bytes() == ws_path.read_bytes()


# --- 15.9 atomic writes ------------------------------------------------------------------

def test_a_planted_symlink_at_the_old_temp_name_is_not_followed(ws_path, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    out = tmp_path / "audit.html"
    (tmp_path / "audit.html.tmp").symlink_to(victim)
    assert run("--db", ws_path, "report", "audit", "-o", out).exit_code == 0
    assert victim.read_text() == "do not touch"
    assert 'content="migrator' in out.read_text()


def test_no_temp_file_is_left_when_writing_fails(tmp_path):
    out = tmp_path / "x.json"
    with pytest.raises(OutputError):
        write_text_safely(out, '{"format": "migrator-x", "bad": "\ud83d"}')  # cannot be encoded
    assert list(tmp_path.iterdir()) == []


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"format": "migrator-plan/1"}')
    out = tmp_path / "out.json"
    out.symlink_to(elsewhere)
    write_text_safely(out, '{"format": "migrator-plan/1", "new": 1}\n')
    assert not out.is_symlink() and json.loads(out.read_text())["new"] == 1
    assert elsewhere.read_text() == '{"format": "migrator-plan/1"}'


# --- 15.10 --db is checked before it is touched --------------------------------------------

def test_db_naming_a_directory_or_fifo_is_refused_untouched(tmp_path):
    d = tmp_path / "dir"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    r = run("--db", d, "status")
    assert r.exit_code == 1 and "directory" in r.output
    r = run("--db", d, "ingest", "tokens", "/nonexistent")
    assert r.exit_code == 1
    assert stat.S_IMODE(d.stat().st_mode) == 0o755
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o644)
    os.chmod(fifo, 0o644)
    r = run("--db", fifo, "audit")
    assert r.exit_code == 1 and "not a regular file" in r.output
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644


def test_foreign_sqlite_file_is_refused_not_migrated(tmp_path):
    other = tmp_path / "crm.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    os.chmod(other, 0o644)
    before = other.read_bytes()
    csv = tmp_path / "t.csv"
    csv.write_text("page_id,token\n1,a\n")
    r = run("--db", other, "ingest", "tokens", csv)
    assert r.exit_code == 1 and "not a migrator workspace; use a new path" in r.output
    assert other.read_bytes() == before and stat.S_IMODE(other.stat().st_mode) == 0o644
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    r = run("--db", text, "status")
    assert r.exit_code == 1 and "not a migrator workspace" in r.output and text.read_text() == "hello"


def test_read_only_commands_never_run_migrations(tmp_path):
    from sqlite_utils import Database

    from migrator.store.schema import MIGRATIONS

    old = tmp_path / "old.db"
    db = Database(old)
    MIGRATIONS.apply(db, stop_before="0540_rejects_severity")
    db.close()
    before = old.read_bytes()
    r = run("--db", old, "report", "audit", "--json")
    assert r.exit_code == 1 and "older migrator" in r.output
    assert old.read_bytes() == before
    assert run("--db", old, "status").exit_code == 1
    assert old.read_bytes() == before


def _immutable(path: Path) -> bool:
    """chattr +i: read-only even for root. False where the file system or container refuses."""
    try:
        return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def _mutable(path: Path) -> None:
    subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def _make_read_only(path: Path):
    if os.geteuid() != 0:
        os.chmod(path, 0o500 if path.is_dir() else 0o400)
        return lambda: os.chmod(path, 0o700 if path.is_dir() else 0o600)
    if not _immutable(path):
        pytest.skip("running as root without chattr +i: no way to make a file read-only")
    return lambda: _mutable(path)


def test_read_only_workspace_file_says_cannot_write(ws_path, tmp_path):
    for side in ("-wal", "-shm"):
        Path(str(ws_path) + side).unlink(missing_ok=True)
    undo = _make_read_only(ws_path)
    try:
        csv = tmp_path / "t2.csv"
        csv.write_text("page_id,token\n1,zz\n")
        r = run("--db", ws_path, "ingest", "tokens", csv)
        assert r.exit_code == 1 and "cannot write the workspace" in r.output
        assert "not a migrator workspace" not in r.output
    finally:
        undo()


def test_read_only_folder_says_cannot_write(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    undo = _make_read_only(folder)
    try:
        csv = tmp_path / "t.csv"
        csv.write_text("page_id,token\n1,a\n")
        r = run("--db", folder / "new.db", "ingest", "tokens", csv)
        assert r.exit_code == 1 and "cannot write the workspace" in r.output
    finally:
        undo()


def test_workspace_in_a_read_only_folder_is_not_called_foreign_by_a_report(ws_path, tmp_path):
    """A report (read-only command) on a workspace whose folder is read-only said "not a migrator
    workspace (SQLite said: unable to open database file)": the user was told their workspace
    was someone else's file."""
    folder = tmp_path / "locked"
    folder.mkdir()
    db = folder / "migration.db"
    db.write_bytes(ws_path.read_bytes())
    undo = _make_read_only(folder)
    try:
        for args in (("report", "audit", "-o", tmp_path / "a.html"), ("status",)):
            r = run("--db", db, *args)
            assert r.exit_code == 1, r.output
            assert "not a migrator workspace" not in r.output and "read-only" in r.output, r.output
    finally:
        undo()


def test_new_workspace_is_0600_and_an_existing_one_is_tightened(tmp_path):
    db = tmp_path / "w.db"
    open_workspace(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    os.chmod(db, 0o644)
    open_workspace(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


# --- 15.13 the emulator's webhooks file ----------------------------------------------------

def test_emulator_webhooks_file_is_private(tmp_path):
    from migrator.emulator.webhooks import WebhookWriter

    path = tmp_path / "hooks.jsonl"
    w = WebhookWriter(path, app_id="1", seed=1, read_rate=0.5)
    w.close() if hasattr(w, "close") else None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loose = tmp_path / "loose.jsonl"
    loose.write_text("")
    os.chmod(loose, 0o644)
    w = WebhookWriter(loose, app_id="1", seed=1, read_rate=0.5)
    w.close() if hasattr(w, "close") else None
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def _serve(tmp_path, db, *args):
    """`migrator emulator serve` in a subprocess: a refusal exits at once; a server that starts
    (the bug) is killed by the timeout and reported as such."""
    import sys

    try:
        return subprocess.run([sys.executable, "-m", "migrator", "--db", str(db), "emulator", "serve",
                               "--port", "0", *map(str, args)], capture_output=True, text=True,
                              cwd=tmp_path, timeout=20)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the emulator started instead of refusing: {exc.stdout!r}")


@pytest.mark.parametrize("option", ["--webhooks", "--state", "--snapshot"])
def test_emulator_never_writes_into_the_workspace(tmp_path, ws_path, option):
    """--state ws.db added the emulator's tables to the workspace; --webhooks ws.db would append
    JSON lines to it."""
    before = sqlite3.connect(ws_path).execute("SELECT name FROM sqlite_master ORDER BY 1").fetchall()
    r = _serve(tmp_path, ws_path, option, ws_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "it is the workspace" in r.stderr and "Traceback" not in r.stderr
    assert sqlite3.connect(ws_path).execute("SELECT name FROM sqlite_master ORDER BY 1").fetchall() == before


def test_emulator_never_appends_to_its_own_inputs(tmp_path, ws_path):
    faults = tmp_path / "faults.toml"
    faults.write_text("[latency]\n")
    os.chmod(faults, 0o644)
    r = _serve(tmp_path, ws_path, "--faults", faults, "--webhooks", faults)
    assert r.returncode == 1 and "it is an input of this command" in r.stderr, r.stderr
    assert faults.read_text() == "[latency]\n" and stat.S_IMODE(faults.stat().st_mode) == 0o644


@pytest.mark.parametrize("option,content", [("--state", "not sqlite\n"), ("--snapshot", "not json\n"),
                                            ("--snapshot", '{"campaigns": [{"key": 1}]}')])
def test_emulator_state_or_snapshot_of_another_kind_is_refused_without_traceback(tmp_path, ws_path,
                                                                                  option, content):
    other = tmp_path / "other.dat"
    other.write_text(content)
    r = _serve(tmp_path, ws_path, option, other)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "error: " in r.stderr
    assert other.read_text() == content


# --- 15.11 a plan finds its spec wherever it is run from -------------------------------------

@pytest.fixture
def project(tmp_path, monkeypatch):
    """p2/: a workspace, a spec and a plan made there with relative paths."""
    from _plan import estate, spec_file, tok

    p2 = tmp_path / "p2"
    p2.mkdir()
    ws = open_workspace(p2 / "migration.db")
    estate(ws, p2, [tok(i) for i in range(4)])
    ws.close()
    spec = spec_file(p2, "")
    monkeypatch.chdir(p2)
    monkeypatch.delenv("MIGRATOR_DB", raising=False)
    r = run("plan", spec.name, "-o", "plan.json", "--as-of", "2026-03-01")
    assert r.exit_code == 0, r.output
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    return p2, spec, other


def test_plan_runs_from_another_directory(project):
    p2, spec, other = project
    plan = json.loads((p2 / "plan.json").read_text())
    assert Path(plan["spec_path"]).is_absolute() and plan["spec_sha256"]
    r = run("--db", "../p2/migration.db", "execute", "../p2/plan.json", "--json")
    assert r.exit_code == 0, r.output
    spec.write_text(spec.read_text() + "\n# only a comment\n")
    assert run("--db", "../p2/migration.db", "execute", "../p2/plan.json").exit_code == 0
    spec.write_text(spec.read_text().replace("daily_budget = 1000", "daily_budget = 1200"))
    r = run("--db", "../p2/migration.db", "execute", "../p2/plan.json")
    assert r.exit_code == 1 and "spec" in r.output and "changed" in r.output


def test_plan_keeps_its_spec_text_in_the_workspace(project):
    p2, spec, other = project
    con = sqlite3.connect(p2 / "migration.db")
    text, sha = con.execute("SELECT spec_text, spec_sha256 FROM plans").fetchone()
    assert text == spec.read_text() and len(sha) == 64
    spec.rename(p2 / "moved.toml")  # a moved spec: judged by the text the workspace kept
    assert run("--db", "../p2/migration.db", "execute", "../p2/plan.json").exit_code == 0


def test_plan_naming_another_workspace_never_creates_an_empty_one(project):
    p2, spec, other = project
    r = run("execute", "../p2/plan.json")
    assert r.exit_code == 1 and str((p2 / "migration.db").resolve()) in r.output
    assert not (other / "migration.db").exists()
    empty = other / "elsewhere.db"
    open_workspace(empty).close()
    r = run("--db", empty, "execute", "../p2/plan.json")
    assert r.exit_code == 1 and str((p2 / "migration.db").resolve()) in r.output


def test_per_page_report_refused_for_one_file_writes_none(ws_path, tmp_path):
    """A foreign index.html in DIR used to be refused only after every business file had been
    written there: exit 1 with a half-written folder."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("the partner's own index\n")
    r = run("--db", ws_path, "report", "readiness", "--per-page", "-o", out)
    assert r.exit_code == 1 and "migrator did not write it" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    assert (out / "index.html").read_text() == "the partner's own index\n"


def test_crm_export_refused_for_one_file_writes_neither(ws_path, tmp_path):
    out = tmp_path / "crm"
    out.mkdir()
    (out / "needs-opt-in.csv").write_text("a,b\n")
    r = run("--db", ws_path, "report", "crm", "-o", out)
    assert r.exit_code == 1 and "migrator did not write it" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["needs-opt-in.csv"]


def test_emulator_state_file_is_private(tmp_path):
    """The state store keeps every send's raw subscription token, like the webhooks file; it
    was created 0644."""
    from migrator.emulator.store import EmulatorStore

    path = tmp_path / "hooks.jsonl.state.sqlite"
    EmulatorStore(path).conn.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    EmulatorStore(path).conn.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

"""The house rules of docs/architecture.md, checked on the real path.

1. Each concern writes only its own tables: the demo runs with SQLite's authorizer hook on
   its workspace connection, and every write is attributed to the innermost migrator module
   on the Python stack at the moment SQLite prepares the statement.
2. The production path (ingest -> audit -> plan -> execute -> report, a dry run included)
   never imports the emulator (or Starlette / uvicorn).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import migrator.store
from migrator.demo import run_demo

WRITES = {sqlite3.SQLITE_INSERT: "INSERT", sqlite3.SQLITE_UPDATE: "UPDATE", sqlite3.SQLITE_DELETE: "DELETE"}

# table -> the package that owns it (prefix match, first wins)
OWNERS = [
    ("exec_", "migrator.execute"),
    ("mm_feedback", "migrator.execute"),
    ("tokens", "migrator.inventory"),
    ("token_events", "migrator.inventory"),
    ("pages", "migrator.inventory"),
    ("contents", "migrator.inventory"),
    ("content_records", "migrator.inventory"),
    ("ingest_runs", "migrator.inventory"),   # receipts too: through the inventory's Run
    ("rejects", "migrator.inventory"),
    ("audit_", "migrator.audit"),
    ("plan", "migrator.plan"),        # plans, plan_campaigns, plan_sends, ...
    ("preflight_", "migrator.preflight"),
]

# Known exceptions (writer module, verb, table): none. (The executor used to copy Meta's
# answers into tokens.mm_state; it records them in its own mm_feedback now.)
ALLOWED: set[tuple[str, str, str]] = set()


def _writer() -> str:
    """The innermost migrator module on the stack (the one whose statement is being prepared)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == "migrator" or name.startswith("migrator."):
            return name
        frame = frame.f_back
    return "<test>"


def _owner(table: str) -> str | None:
    for prefix, owner in OWNERS:
        if table == prefix or table.startswith(prefix):
            return owner
    return None


@pytest.fixture
def watched(monkeypatch):
    """Every workspace opened through migrator.store.open_workspace reports its writes here."""
    writes: set[tuple[str, str, str]] = set()
    real = migrator.store.open_workspace

    def authorizer(action, arg1, arg2, dbname, trigger):
        if action in WRITES and dbname == "main":
            writes.add((_writer(), WRITES[action], arg1))
        return sqlite3.SQLITE_OK

    def open_watched(*args, **kwargs):
        ws = real(*args, **kwargs)   # migrations (store/) run here, before the hook
        ws.conn.set_authorizer(authorizer)
        return ws

    monkeypatch.setattr(migrator.store, "open_workspace", open_watched)
    return writes


def test_each_concern_writes_only_its_own_tables(tmp_path, watched):
    from migrator.execute import execute_plan, execution_status

    result = run_demo(tmp_path / "demo", warmup_seconds=60)
    ws = migrator.store.open_workspace(result.db_path)
    try:
        dry = execute_plan(ws, result.plan_path)             # a dry run after the real one
        assert dry.mode == "dry_run"
        assert execution_status(ws).plans
    finally:
        ws.close()

    tables = {table for _, _, table in watched}
    # the hook saw the whole path (else the test proves nothing)
    for expected in ("tokens", "pages", "contents", "audit_tokens", "plan_sends", "exec_sends"):
        assert expected in tables, expected
    wrong = sorted((who, verb, table) for who, verb, table in watched
                   if (owner := _owner(table)) is not None
                   and not (who == owner or who.startswith(owner + "."))
                   and (who, verb, table) not in ALLOWED)
    assert wrong == [], "writes outside the owning concern: " + json.dumps(wrong)


def test_the_production_path_never_imports_the_emulator(tmp_path):
    """Import every module of the path, run it end to end with a dry-run execute, then look."""
    script = textwrap.dedent(f"""
        import importlib, json, pkgutil, sys
        from pathlib import Path

        import migrator
        for pkg in ("store", "inventory", "convert", "rules", "audit", "plan", "graph", "preflight", "execute",
                "report"):
            mod = importlib.import_module("migrator." + pkg)
            for info in pkgutil.walk_packages(mod.__path__, "migrator." + pkg + "."):
                if not info.name.endswith((".workers",)):
                    importlib.import_module(info.name)

        from migrator.audit import run_audit
        from migrator.execute import execute_plan
        from migrator.inventory import ingest_content, ingest_pages, ingest_tokens
        from migrator.plan import make_plan
        from migrator.report import make_report
        from migrator.sample import generate_sample
        from migrator.store import open_workspace
        from migrator.demo import SAMPLE, sample_spec_path

        out = Path({str(tmp_path)!r})
        estate = out / "estate"
        generate_sample(estate, **SAMPLE)
        ws = open_workspace(out / "ws.db")
        ingest_pages(ws, [estate / "pages.csv"])
        ingest_tokens(ws, [estate / "tokens.csv", estate / "tokens_listing.jsonl", estate / "webhooks.jsonl"])
        ingest_content(ws, [estate / "content_library.json", estate / "content_sends.jsonl"])
        run_audit(ws)
        plan = make_plan(ws, sample_spec_path(), out=out / "plan.json")
        summary = execute_plan(ws, plan)
        make_report(ws, "execution", out=out / "execution.html")
        loaded = sorted(m for m in sys.modules
                        if m.startswith("migrator.emulator") or m.split(".")[0] in ("starlette", "uvicorn"))
        print(json.dumps({{"mode": summary.mode, "dry_run": summary.dry_run, "loaded": loaded}}))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["mode"] == "dry_run" and out["dry_run"]["campaigns_created"] > 0
    assert out["dry_run"]["sends_accepted"] > 0
    assert out["loaded"] == []

"""Preflight results in the workspace (tables of migration 0580), and the latest state per page."""

from __future__ import annotations

import json
import sqlite3


def save_preflight(ws, report) -> int:
    """Record one run with its checks and page states; returns the run id."""
    c = report.counts
    with ws.transaction() as conn:   # (sqlite3's `with conn:` opens none on this autocommit connection)
        run_id = conn.execute(
            "INSERT INTO preflight_runs (plan_id, source, checked_at, base_url, ok, passed, failed, unknown) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (report.plan_id, report.source, report.checked_at, report.base_url, int(report.ok),
             c["pass"], c["fail"], c["unknown"])).lastrowid
        conn.executemany(
            "INSERT INTO preflight_checks (run_id, check_name, scope, subject, status, readable, detail, who) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, r.check, r.scope, r.subject, r.status, int(r.readable), r.detail,
              r.to_json().get("who")) for r in report.checks])
        conn.executemany(
            "INSERT INTO preflight_pages (run_id, page_id, ad_account_id, state, failed, unknown) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(run_id, p["page_id"], p["ad_account_id"], p["state"], json.dumps(p["failed"]),
              json.dumps(p["unknown"])) for p in report.pages])
    return run_id


def latest_page_states(conn) -> dict[str, dict]:
    """{page_id: {state, checked_at, failed: [...], unknown: [...]}} from each page's latest run."""
    try:
        rows = conn.execute("SELECT page_id, state, checked_at, failed, unknown FROM v_preflight_latest_pages")
    except sqlite3.OperationalError:   # a workspace without the preflight tables: no states
        return {}
    return {pid: {"state": st, "checked_at": at, "failed": json.loads(f or "[]"), "unknown": json.loads(u or "[]")}
            for pid, st, at, f, u in rows}

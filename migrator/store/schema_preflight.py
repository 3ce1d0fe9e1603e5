"""Workspace tables of the preflight concern: what `migrator preflight` found, per run and page.

Only results are stored (check, status, what it read in words); never a token, never an answer body.
The readiness report shows each page's state from the latest run (`v_preflight_latest_pages`).
"""

from __future__ import annotations

from migrator.store.schema import MIGRATIONS


@MIGRATIONS(name="0580_preflight")
def _preflight(db) -> None:
    db.executescript("""
        CREATE TABLE preflight_runs (
            id INTEGER PRIMARY KEY,
            plan_id TEXT,                         -- NULL when a plan spec was checked
            source TEXT NOT NULL,                 -- plan | spec
            checked_at INTEGER NOT NULL,          -- epoch s
            base_url TEXT,                        -- the Graph host read (Meta or an emulator)
            ok INTEGER NOT NULL,                  -- 1: no check failed
            passed INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            unknown INTEGER NOT NULL
        );

        CREATE TABLE preflight_checks (
            run_id INTEGER NOT NULL REFERENCES preflight_runs(id),
            check_name TEXT NOT NULL,             -- token_permissions | ad_account_status | ...
            scope TEXT NOT NULL,                  -- token | ad_account | page
            subject TEXT NOT NULL,                -- page id, ad account id, or 'me'
            status TEXT NOT NULL,                 -- pass | fail | unknown
            readable INTEGER NOT NULL,            -- 0: Meta exposes nothing before a send
            detail TEXT,
            who TEXT                              -- partner | business admin | Meta (when not pass)
        );
        CREATE INDEX preflight_checks_run ON preflight_checks(run_id);

        CREATE TABLE preflight_pages (
            run_id INTEGER NOT NULL REFERENCES preflight_runs(id),
            page_id TEXT NOT NULL,
            ad_account_id TEXT,
            state TEXT NOT NULL,                  -- pass | fail | unknown
            failed TEXT,                          -- JSON list of failed checks
            unknown TEXT,                         -- JSON list of readable checks left unknown
            PRIMARY KEY (run_id, page_id)
        );

        CREATE VIEW v_preflight_latest_pages AS
            SELECT p.*, r.checked_at, r.plan_id
            FROM preflight_pages p JOIN preflight_runs r ON r.id = p.run_id
            WHERE p.run_id = (SELECT MAX(p2.run_id) FROM preflight_pages p2 WHERE p2.page_id = p.page_id);
    """)

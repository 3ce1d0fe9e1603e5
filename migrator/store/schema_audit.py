"""Workspace tables for the audit concern (registered on MIGRATIONS in schema.py's order).

`audit_runs` keeps every run (as-of date, rules version and fingerprint, summary JSON).
The detail tables (`audit_tokens`, `audit_pages`, `audit_contents`) hold the latest run
only: a new run replaces them in one transaction, so a 10M-token estate does not grow by
10M rows per audit. Token findings are a bit mask in `audit_tokens.flags`; the view
`v_audit_token_findings` expands it using the per-run catalogue `audit_run_findings`.

The planner selects its tokens with:  SELECT * FROM v_audit_migrate
(= latest finished run, verdict 'migrate', one token per person: is_primary = 1).
"""

from migrator.store.schema import MIGRATIONS


@MIGRATIONS(name="0100_audit")
def _audit(db) -> None:
    db.executescript(
        """
        CREATE TABLE audit_runs (
            id INTEGER PRIMARY KEY,
            as_of TEXT NOT NULL,               -- YYYY-MM-DD (UTC)
            started_at INTEGER NOT NULL,
            finished_at INTEGER,
            status TEXT NOT NULL,              -- running | done
            rules_version TEXT NOT NULL,
            rules_fingerprint TEXT NOT NULL,
            rules_origins TEXT NOT NULL,       -- JSON list: package and/or override file paths
            options TEXT NOT NULL,             -- JSON: interpretation options in force
            tokens INTEGER,
            summary TEXT                       -- JSON: what `migrator audit --json` prints
        );

        -- The finding catalogue as rendered for one run (explanations carry the run's dates).
        CREATE TABLE audit_run_findings (
            run_id INTEGER NOT NULL,
            code TEXT NOT NULL,
            scope TEXT NOT NULL,               -- token | page | content
            bit INTEGER NOT NULL,
            severity TEXT NOT NULL,            -- info | warning | error
            explanation TEXT NOT NULL,
            remedy TEXT NOT NULL,
            sources TEXT NOT NULL,             -- JSON list of URLs
            count INTEGER NOT NULL DEFAULT 0,  -- tokens / pages / contents carrying it
            PRIMARY KEY (run_id, code)
        );

        CREATE TABLE audit_tokens (
            token_id INTEGER PRIMARY KEY,      -- tokens.id
            run_id INTEGER NOT NULL,
            page_id TEXT,
            verdict TEXT NOT NULL,             -- migrate | stay_on_rn | blocked | opted_out | review
            certain INTEGER NOT NULL,          -- 1: every candidate region gives this verdict
            region TEXT,                       -- the country when exactly one candidate
            region_source TEXT NOT NULL,       -- explicit | timezone | mm_error | unknown
            candidates TEXT,                   -- comma-separated ISO codes (NULL = unknown)
            detail TEXT,                       -- for review: verdict per candidate
            flags INTEGER NOT NULL,            -- bit mask of token findings
            is_primary INTEGER NOT NULL        -- 0: another token of the same person is used
        );

        CREATE TABLE audit_pages (
            page_id TEXT PRIMARY KEY,
            run_id INTEGER NOT NULL,
            status TEXT NOT NULL,              -- ready | needs_action | blocked
            reasons TEXT NOT NULL,             -- JSON list of finding codes behind the status
            business_country TEXT,
            ad_account_id TEXT,
            tokens INTEGER NOT NULL,
            migrate INTEGER NOT NULL,
            stay_on_rn INTEGER NOT NULL,
            blocked INTEGER NOT NULL,
            opted_out INTEGER NOT NULL,
            review INTEGER NOT NULL,
            contents_needing_work INTEGER NOT NULL,
            flags INTEGER NOT NULL             -- bit mask of page findings
        );

        CREATE TABLE audit_contents (
            content_id INTEGER PRIMARY KEY,    -- contents.id
            run_id INTEGER NOT NULL,
            page_id TEXT,
            outcome TEXT,                      -- exact | lossy | needs_edit | unsupported | NULL
            uses INTEGER NOT NULL,
            flags INTEGER NOT NULL             -- bit mask of content findings
        );

        CREATE VIEW v_audit_latest_run AS
            SELECT * FROM audit_runs WHERE status = 'done' ORDER BY id DESC LIMIT 1;

        CREATE VIEW v_audit_latest_tokens AS
            SELECT a.token_id, a.run_id, t.token, t.token_hash, a.page_id, t.psid, t.topic_title,
                   t.timezone, a.verdict, a.certain, a.region, a.region_source, a.candidates,
                   a.detail, a.flags, a.is_primary
            FROM audit_tokens a JOIN tokens t ON t.id = a.token_id
            WHERE a.run_id = (SELECT MAX(id) FROM audit_runs WHERE status = 'done');

        CREATE VIEW v_audit_migrate AS
            SELECT * FROM v_audit_latest_tokens WHERE verdict = 'migrate' AND is_primary = 1;

        CREATE VIEW v_audit_token_findings AS
            SELECT a.token_id, a.page_id, a.verdict, f.code, f.severity, f.explanation, f.remedy
            FROM audit_tokens a
            JOIN audit_run_findings f
              ON f.run_id = a.run_id AND f.scope = 'token' AND (a.flags >> f.bit) & 1 = 1;

        CREATE VIEW v_audit_page_findings AS
            SELECT p.page_id, p.status, f.code, f.severity, f.explanation, f.remedy
            FROM audit_pages p
            JOIN audit_run_findings f
              ON f.run_id = p.run_id AND f.scope = 'page' AND (p.flags >> f.bit) & 1 = 1;

        CREATE VIEW v_audit_verdicts AS
            SELECT verdict, COUNT(*) AS tokens, SUM(is_primary) AS recipients
            FROM audit_tokens GROUP BY verdict;
        """
    )


@MIGRATIONS(name="0591_audit_results_digest")
def _audit_results_digest(db) -> None:
    """The per-verdict checksums of a finished run's results, taken once when the audit ends.

    A plan's staleness check compares them at every `execute` start and every `status`; summed
    from `audit_tokens` each time they cost a full scan (about 20 s at 10M tokens). Runs
    finished before this step have none and are summed on demand.
    """
    db.execute("ALTER TABLE audit_runs ADD COLUMN results_digest TEXT")

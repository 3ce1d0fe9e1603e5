"""Workspace tables for the execute concern (registered on MIGRATIONS in schema.py's order).

`exec_sends` is the send ledger: one row per planned send (copied from `plan_sends` by one
INSERT ... SELECT), moving planned -> in_flight -> sent | skipped | failed | unknown.
`exec_campaigns` records the Meta ids of the campaigns the executor created (committed before
anything is sent under them). `exec_lock` holds at most one row: the executor that owns the
workspace. `exec_receipts` remembers every MM webhook event ingested (redeliveries collapse).
The same DDL (`LEDGER_DDL`) builds a throw-away copy in an attached in-memory schema for dry runs.
"""

from migrator.store.schema import MIGRATIONS

# {s} is the schema name: "main" for the workspace, "dry" for a dry run's scratch ledger.
LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS {s}.exec_plans (
    plan_id TEXT PRIMARY KEY,
    first_run_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',   -- running | waiting | stopped | done
    fingerprints TEXT                         -- unused since 0510 (the executor writes no plan input)
);

CREATE TABLE IF NOT EXISTS {s}.exec_campaigns (
    plan_id TEXT NOT NULL,
    campaign_key TEXT NOT NULL,
    name TEXT NOT NULL,
    ad_account_id TEXT NOT NULL,
    page_id TEXT NOT NULL,
    message_id TEXT,                          -- id returned by message_campaign (sent as message_id)
    state TEXT NOT NULL DEFAULT 'pending',    -- pending | creating | ready | warming | stopped | failed
    created_at INTEGER,                       -- when Meta created it (warm-up is counted from here)
    found_existing INTEGER NOT NULL DEFAULT 0,
    ready_at INTEGER,
    paused_until INTEGER,                     -- daily budget reached: nothing before this
    reason TEXT,
    error TEXT,
    PRIMARY KEY (plan_id, campaign_key)
);

CREATE TABLE IF NOT EXISTS {s}.exec_sends (
    plan_id TEXT NOT NULL,
    send_id INTEGER NOT NULL,
    token_id INTEGER NOT NULL,                -- tokens.id (never the token)
    campaign_key TEXT NOT NULL,
    message_key TEXT NOT NULL,
    batch INTEGER NOT NULL,
    not_before INTEGER NOT NULL,              -- epoch s; moved later by recipient-later / retries
    state TEXT NOT NULL DEFAULT 'planned',    -- planned | in_flight | sent | skipped | failed | unknown
    reason TEXT,
    error_code INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    tracking_id TEXT,
    sent_at INTEGER,
    updated_at INTEGER,
    delivered_at INTEGER,
    read_at INTEGER,
    delivery_failed TEXT,
    mm_state TEXT,                            -- recipient never: opted_out | invalid | wrong_region | expired
    mm_applied INTEGER NOT NULL DEFAULT 1,    -- unused since 0510 (feedback goes to mm_feedback at once)
    PRIMARY KEY (plan_id, send_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {s}.exec_sends_due ON exec_sends(plan_id, state, campaign_key, batch, send_id);
CREATE INDEX IF NOT EXISTS {s}.exec_sends_token ON exec_sends(token_id, campaign_key);
CREATE INDEX IF NOT EXISTS {s}.exec_sends_tracking ON exec_sends(tracking_id) WHERE tracking_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS {s}.exec_sends_mm ON exec_sends(mm_applied) WHERE mm_applied = 0;

CREATE TABLE IF NOT EXISTS {s}.exec_runs (
    id INTEGER PRIMARY KEY,
    plan_id TEXT NOT NULL,
    mode TEXT NOT NULL,                       -- execute | dry_run
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    pid INTEGER,
    host TEXT,
    outcome TEXT,                             -- done | waiting | stopped | interrupted | fatal
    summary TEXT                              -- JSON ExecutionSummary
);
"""


@MIGRATIONS(name="0300_execute")
def _execute(db) -> None:
    db.executescript(LEDGER_DDL.format(s="main") + """
        CREATE TABLE exec_lock (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            owner TEXT NOT NULL,                  -- user@host
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            heartbeat_at INTEGER NOT NULL,
            plan_id TEXT,
            nonce TEXT NOT NULL
        );

        CREATE TABLE exec_receipts (
            event_key TEXT PRIMARY KEY,           -- hash of field, token, message id, tracking id, time
            field TEXT NOT NULL,
            token_id INTEGER,
            message_id TEXT,
            tracking_id TEXT,
            ts_ms INTEGER,
            run_id INTEGER
        ) WITHOUT ROWID;

        CREATE VIEW v_exec_sends AS
            SELECT e.plan_id, e.send_id, e.batch, e.campaign_key, e.message_key, t.token_hash, e.state,
                   e.reason, e.error_code, e.attempts, e.tracking_id,
                   datetime(e.sent_at, 'unixepoch') AS sent_at_utc,
                   datetime(e.delivered_at, 'unixepoch') AS delivered_at_utc,
                   datetime(e.read_at, 'unixepoch') AS read_at_utc
            FROM exec_sends e JOIN tokens t ON t.id = e.token_id;
    """)


@MIGRATIONS(name="0500_mm_feedback")
def _mm_feedback(db) -> None:
    """What Meta told us about a token when we sent to it, in a table the execute concern owns.

    The inventory (`tokens`) holds what the partner's files say; the executor must not write it
    (a write there would change the plan's inventory fingerprint and make every plan stale). The
    audit joins this table instead. Rows learned before this step move over from `tokens.mm_state`.
    """
    db.executescript("""
        CREATE TABLE mm_feedback (
            token_id INTEGER PRIMARY KEY,         -- tokens.id (never the token itself)
            state TEXT NOT NULL,                  -- opted_out | invalid | wrong_region | expired | suspect
            code INTEGER,                         -- Graph error code that taught it
            subcode INTEGER,                      -- error_subcode, when Meta gave one
            class TEXT,                           -- the error's class (graph/classify)
            seen_at INTEGER NOT NULL,             -- epoch seconds
            plan_id TEXT,                         -- the plan and send that learned it
            send_id INTEGER
        );
        INSERT INTO mm_feedback (token_id, state, code, seen_at)
            SELECT id, mm_state, mm_state_code, COALESCE(mm_state_at, 0)
            FROM tokens WHERE mm_state IS NOT NULL;
    """)


# Columns and indexes added by 0510 (applied to the workspace by the migration and to a dry run's
# scratch ledger after LEDGER_DDL, so both have the same columns).
LEDGER_0510 = """
ALTER TABLE {s}.exec_sends ADD COLUMN claimed_at INTEGER;      -- when its last request was claimed (left)
ALTER TABLE {s}.exec_sends ADD COLUMN resend_check TEXT;       -- the last --resend-unknown decision for it
ALTER TABLE {s}.exec_runs ADD COLUMN ended TEXT;               -- finished | interrupted | killed | refused
"""


@MIGRATIONS(name="0510_exactly_once")
def _exactly_once(db) -> None:
    """Receipts are facts kept whatever the row's state; rows remember when their request left.

    `claimed_at` lets `--resend-unknown` tell whether a receipt would exist by now; `resend_check`
    says per row why it was or was not re-sent; `exec_runs.ended` says how each run ended (the run
    history of the execution report). Receipts are indexed by what settles a row: the token and the
    campaign's message id, and per message id and field by time (the newest echo of a campaign).
    """
    db.executescript(LEDGER_0510.format(s="main") + """
        CREATE INDEX IF NOT EXISTS exec_receipts_token ON exec_receipts(token_id, message_id);
        CREATE INDEX IF NOT EXISTS exec_receipts_message_time ON exec_receipts(message_id, field, ts_ms);
        CREATE INDEX IF NOT EXISTS exec_receipts_run ON exec_receipts(run_id);
        CREATE INDEX IF NOT EXISTS exec_campaigns_message ON exec_campaigns(message_id);
        -- only the rows a receipt may still settle (few), so settling never scans the ledger
        CREATE INDEX IF NOT EXISTS exec_sends_unsettled ON exec_sends(plan_id, token_id)
            WHERE state IN ('in_flight', 'unknown');
        UPDATE exec_runs SET ended = CASE WHEN outcome = 'interrupted' THEN 'interrupted' ELSE 'finished' END
            WHERE finished_at IS NOT NULL;
        UPDATE exec_receipts SET ts_ms = ts_ms * 1000 WHERE ts_ms < 100000000000;   -- always ms
    """)


@MIGRATIONS(name="0511_exec_sends_view_recovery")
def _exec_sends_view_recovery(db) -> None:
    """`v_exec_sends` also shows when each row's request was claimed and the --resend-unknown
    decision for it, so a person can see per row why an unknown send was or was not re-sent."""
    db.executescript("""
        DROP VIEW IF EXISTS v_exec_sends;
        CREATE VIEW v_exec_sends AS
            SELECT e.plan_id, e.send_id, e.batch, e.campaign_key, e.message_key, t.token_hash, e.state,
                   e.reason, e.error_code, e.attempts, e.tracking_id,
                   datetime(e.claimed_at, 'unixepoch') AS claimed_at_utc,
                   datetime(e.sent_at, 'unixepoch') AS sent_at_utc,
                   datetime(e.delivered_at, 'unixepoch') AS delivered_at_utc,
                   datetime(e.read_at, 'unixepoch') AS read_at_utc,
                   e.resend_check
            FROM exec_sends e JOIN tokens t ON t.id = e.token_id;
    """)


@MIGRATIONS(name="0520_exec_campaign_zones")
def _exec_campaign_zones(db) -> None:
    """The ad account's time zone, recorded with each campaign at setup (a daily budget resets at the
    start of the account's own day, not at UTC midnight). A table of its own beside
    `exec_campaigns` (one row per campaign) so the dry run's scratch copy of the ledger tables, which
    copies `exec_campaigns` column for column, is unaffected; a dry run never writes it."""
    db.executescript("""
        CREATE TABLE exec_campaign_zones (
            plan_id TEXT NOT NULL,
            campaign_key TEXT NOT NULL,
            ad_account_id TEXT NOT NULL,
            timezone_name TEXT NOT NULL,          -- IANA zone of the ad account (Meta's timezone_name)
            source TEXT NOT NULL,                 -- where it was read, e.g. act_111.timezone_name
            recorded_at INTEGER NOT NULL,         -- epoch seconds
            PRIMARY KEY (plan_id, campaign_key)
        );
    """)


# Per-(plan, campaign, batch, state) counters of `exec_sends`, kept by triggers so `status` and the
# ledger's counts read a few hundred rows instead of grouping the whole ledger (15 s at 4.9M rows).
# `delivered` / `read` count the rows with a delivered_at / read_at. A counter left at 0 stays (no
# DELETE per transition); readers skip n = 0. Applied to the workspace by 0610 and to a dry run's
# scratch ledger after LEDGER_DDL (unqualified names in a trigger resolve in the trigger's schema).
COUNTS_DDL = """
CREATE TABLE IF NOT EXISTS {s}.exec_send_counts (
    plan_id TEXT NOT NULL,
    campaign_key TEXT NOT NULL,
    batch INTEGER NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plan_id, campaign_key, batch, state)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS {s}.exec_sends_count_insert AFTER INSERT ON exec_sends BEGIN
    INSERT INTO exec_send_counts (plan_id, campaign_key, batch, state, n, delivered, read)
        VALUES (NEW.plan_id, NEW.campaign_key, NEW.batch, NEW.state, 1,
                NEW.delivered_at IS NOT NULL, NEW.read_at IS NOT NULL)
        ON CONFLICT (plan_id, campaign_key, batch, state) DO UPDATE SET
            n = n + 1, delivered = delivered + excluded.delivered, read = read + excluded.read;
END;

CREATE TRIGGER IF NOT EXISTS {s}.exec_sends_count_delete AFTER DELETE ON exec_sends BEGIN
    UPDATE exec_send_counts SET n = n - 1, delivered = delivered - (OLD.delivered_at IS NOT NULL),
           read = read - (OLD.read_at IS NOT NULL)
        WHERE plan_id = OLD.plan_id AND campaign_key = OLD.campaign_key AND batch = OLD.batch
          AND state = OLD.state;
END;

CREATE TRIGGER IF NOT EXISTS {s}.exec_sends_count_update
    AFTER UPDATE OF plan_id, campaign_key, batch, state, delivered_at, read_at ON exec_sends
    WHEN OLD.state IS NOT NEW.state OR OLD.plan_id IS NOT NEW.plan_id
      OR OLD.campaign_key IS NOT NEW.campaign_key OR OLD.batch IS NOT NEW.batch
      OR (OLD.delivered_at IS NULL) != (NEW.delivered_at IS NULL)
      OR (OLD.read_at IS NULL) != (NEW.read_at IS NULL)
BEGIN
    UPDATE exec_send_counts SET n = n - 1, delivered = delivered - (OLD.delivered_at IS NOT NULL),
           read = read - (OLD.read_at IS NOT NULL)
        WHERE plan_id = OLD.plan_id AND campaign_key = OLD.campaign_key AND batch = OLD.batch
          AND state = OLD.state;
    INSERT INTO exec_send_counts (plan_id, campaign_key, batch, state, n, delivered, read)
        VALUES (NEW.plan_id, NEW.campaign_key, NEW.batch, NEW.state, 1,
                NEW.delivered_at IS NOT NULL, NEW.read_at IS NOT NULL)
        ON CONFLICT (plan_id, campaign_key, batch, state) DO UPDATE SET
            n = n + 1, delivered = delivered + excluded.delivered, read = read + excluded.read;
END;
"""


@MIGRATIONS(name="0610_exec_send_counts")
def _exec_send_counts(db) -> None:
    """Counters of the send ledger per plan, campaign, batch and state, kept by triggers (issue 19).

    `migrator status` grouped the whole ledger at every call (15 s of 23.6 s at 10M tokens once a run
    had started); it now reads these counters. The counters of ledgers that exist already are
    filled here by one GROUP BY (once)."""
    db.executescript(COUNTS_DDL.format(s="main") + """
        INSERT INTO exec_send_counts (plan_id, campaign_key, batch, state, n, delivered, read)
            SELECT plan_id, campaign_key, batch, state, COUNT(*), COUNT(delivered_at), COUNT(read_at)
            FROM exec_sends GROUP BY plan_id, campaign_key, batch, state;
    """)

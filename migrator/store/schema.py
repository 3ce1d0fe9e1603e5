"""Workspace schema, as an ordered list of named migrations (sqlite-utils `Migrations`).

Migrations are append-only: never edit or reorder an applied step, add a new one. Each
concern keeps its tables in its own `schema_<concern>.py` module, imported below in a
fixed order so that every workspace applies the steps in the same sequence.

Tables are meant to be read by people with any SQLite tool: plain names, one row per
thing, times as epoch seconds (`*_at`, UTC) unless a column says `_ms`.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("migrator")


@MIGRATIONS(name="0001_inventory")
def _inventory(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE ingest_runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,              -- tokens | pages | content | receipts
            path TEXT NOT NULL,
            file_sha256 TEXT,
            format TEXT,                     -- csv | jsonl | webhooks | send_api | library ...
            started_at INTEGER NOT NULL,
            finished_at INTEGER,
            records INTEGER NOT NULL DEFAULT 0,
            accepted INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            ignored INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'ok' -- ok | strict_failed
        );

        CREATE TABLE pages (
            page_id TEXT PRIMARY KEY,
            name TEXT,
            business_country TEXT,           -- ISO 3166 alpha-2, upper case
            ad_account_id TEXT,              -- digits only, without act_
            currency TEXT,                   -- ISO 4217
            updated_at INTEGER,
            run_id INTEGER
        );

        -- One row per subscription token (= person x page x topic). Current state; the
        -- webhook history is in token_events. Field groups merge by observation time:
        -- profile_* (what an opt-in says) and status_* (stop/resume) independently.
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY,
            token TEXT NOT NULL UNIQUE,
            token_hash TEXT NOT NULL,        -- short hash shown in reports and plans
            page_id TEXT,
            psid TEXT,
            topic_title TEXT,
            payload TEXT,
            timezone TEXT,
            country TEXT,                    -- explicit country from the partner, if any
            status TEXT NOT NULL DEFAULT 'active',  -- active | stopped (RN stop/resume)
            user_token_status TEXT,
            reoptin TEXT,
            frequency TEXT,                  -- legacy DAILY/WEEKLY/MONTHLY
            token_expiry INTEGER,
            created_at INTEGER,
            next_eligible_at INTEGER,
            last_sent_at INTEGER,
            source TEXT,                     -- csv | listing | webhook | pull
            profile_at INTEGER,              -- ms of the observation that set the profile
            profile_key TEXT,
            status_at INTEGER,
            status_key TEXT,
            mm_state TEXT,                   -- learned from MM sends: opted_out | invalid | wrong_region | expired
            mm_state_code INTEGER,
            mm_state_at INTEGER,
            first_run INTEGER,
            updated_run INTEGER
        );
        CREATE INDEX tokens_person ON tokens(page_id, psid);

        CREATE TABLE token_events (
            id INTEGER PRIMARY KEY,
            event_key TEXT NOT NULL UNIQUE,  -- hash of the event: redeliveries collapse
            token TEXT NOT NULL,
            page_id TEXT,
            psid TEXT,
            ts_ms INTEGER NOT NULL,
            kind TEXT NOT NULL,              -- optin | stop | resume
            data TEXT NOT NULL,              -- the optin object as delivered (JSON)
            run_id INTEGER,
            path TEXT,
            line INTEGER
        );
        CREATE INDEX token_events_token ON token_events(token, ts_ms);

        -- RN message content, deduplicated by a hash of the normalised message.
        CREATE TABLE contents (
            id INTEGER PRIMARY KEY,
            content_hash TEXT NOT NULL UNIQUE,
            page_id TEXT,
            topic_title TEXT,
            key TEXT,
            source TEXT NOT NULL,            -- send_api | library
            message TEXT NOT NULL,           -- the RN message object (normalised JSON)
            uses INTEGER NOT NULL DEFAULT 1, -- how many sends/library entries carried it
            first_run INTEGER,
            -- filled by the converter (migrator.convert)
            outcome TEXT,                    -- exact | lossy | needs_edit | unsupported
            mm_message TEXT,                 -- converted MM message JSON (NULL if none)
            changes TEXT,                    -- JSON list of {code, detail}
            problems TEXT,                   -- JSON list of {code, detail, mm_error_code}
            converter_version TEXT
        );

        -- One row per content record ingested (a logged send or a library entry); the
        -- record_key makes re-ingesting a file a no-op, `contents.uses` counts these.
        CREATE TABLE content_records (
            record_key TEXT PRIMARY KEY,
            content_id INTEGER NOT NULL REFERENCES contents(id),
            token TEXT,
            page_id TEXT,
            topic_title TEXT,
            key TEXT,
            run_id INTEGER,
            line INTEGER
        );
        CREATE INDEX content_records_content ON content_records(content_id);

        CREATE TABLE rejects (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL,
            path TEXT NOT NULL,
            line INTEGER,
            reason TEXT NOT NULL,
            excerpt TEXT                     -- first 200 characters of the record
        );

        CREATE VIEW v_pages_summary AS
            SELECT t.page_id,
                   p.name,
                   p.business_country,
                   p.ad_account_id,
                   COUNT(*) AS tokens,
                   SUM(t.status = 'active') AS active,
                   SUM(t.status = 'stopped') AS stopped,
                   COUNT(DISTINCT t.psid) AS persons
            FROM tokens t LEFT JOIN pages p ON p.page_id = t.page_id
            GROUP BY t.page_id;

        CREATE VIEW v_persons_with_several_tokens AS
            SELECT page_id, psid, COUNT(*) AS tokens, GROUP_CONCAT(topic_title, ' | ') AS topics
            FROM tokens WHERE psid IS NOT NULL
            GROUP BY page_id, psid HAVING COUNT(*) > 1;

        CREATE VIEW v_ingest_history AS
            SELECT id, kind, path, format, datetime(started_at, 'unixepoch') AS started,
                   records, accepted, duplicates, ignored, rejected, status
            FROM ingest_runs ORDER BY id;
        """
    )


# Later concerns register their steps, in this order (append-only).
from migrator.store import schema_audit  # noqa: E402,F401
from migrator.store import schema_plan  # noqa: E402,F401
from migrator.store import schema_execute  # noqa: E402,F401


@MIGRATIONS(name="0400_token_events_time_ordered_key")
def _token_events_time_ordered_key(db: Database) -> None:
    """Make event identity unique on (ts_ms, event_key) instead of event_key alone.

    The same thing is unique (the key hashes the timestamp in), but an index led by time
    takes webhook logs, which are chronological, near its right edge: at 3M events an insert
    cost 2.0 us instead of 9.0 us against the random hex key alone. SQLite cannot drop an
    inline UNIQUE, so the table is rebuilt with its rows and ids.
    """
    db.executescript(
        """
        CREATE TABLE token_events_new (
            id INTEGER PRIMARY KEY,
            event_key TEXT NOT NULL,         -- hash of the event: redeliveries collapse
            token TEXT NOT NULL,
            page_id TEXT,
            psid TEXT,
            ts_ms INTEGER NOT NULL,
            kind TEXT NOT NULL,              -- optin | stop | resume
            data TEXT NOT NULL,              -- the optin object as delivered (JSON)
            run_id INTEGER,
            path TEXT,
            line INTEGER
        );
        INSERT INTO token_events_new
            SELECT id, event_key, token, page_id, psid, ts_ms, kind, data, run_id, path, line
            FROM token_events;
        DROP TABLE token_events;
        ALTER TABLE token_events_new RENAME TO token_events;
        CREATE UNIQUE INDEX token_events_key ON token_events(ts_ms, event_key);
        CREATE INDEX token_events_token ON token_events(token, ts_ms);
        """
    )


from migrator.store import schema_preflight  # noqa: E402,F401


@MIGRATIONS(name="0540_rejects_severity")
def _rejects_severity(db: Database) -> None:
    """Warnings beside rejects: a bad optional field keeps its record (severity `warning`,
    naming the column and the value); only a bad required field rejects it (`reject`)."""
    db.executescript(
        """
        ALTER TABLE rejects ADD COLUMN severity TEXT NOT NULL DEFAULT 'reject';  -- reject | warning
        ALTER TABLE rejects ADD COLUMN field TEXT;   -- the column a warning is about
        ALTER TABLE rejects ADD COLUMN value TEXT;   -- its value as read (first 200 characters)
        CREATE INDEX IF NOT EXISTS ingest_runs_sha ON ingest_runs(file_sha256);
        """
    )


@MIGRATIONS(name="0590_ingest_runs_status_only")
def _ingest_runs_status_only(db: Database) -> None:
    """Mark webhook ingests that only stopped or resumed known tokens.

    Such a run changes nothing a plan decided from (no new token, no profile field); the
    executor re-checks every token's status when it claims a send. The plan's inventory
    fingerprint leaves these runs out, so ingesting opt-outs in the middle of a cutover (which
    must happen, for them to be honoured) does not make the running plan stale.
    """
    db.execute("ALTER TABLE ingest_runs ADD COLUMN status_only INTEGER NOT NULL DEFAULT 0")


@MIGRATIONS(name="0600_token_events_without_rowid")
def _token_events_without_rowid(db: Database) -> None:
    """Key `token_events` by (ts_ms, event_key) itself: a WITHOUT ROWID table.

    An event's identity was a unique index beside a rowid table, so every event was written
    twice (the row, and its key in the index) and a redelivery check read the index, then
    the row. Clustered on the key, an event is one B-tree entry, inserted near the right
    edge of a chronological webhook log, and the merge's "already applied?" lookup is one
    seek. The `id` column goes: nothing outside the table referred to it (the status-only
    test of an ingest run asks the run's own events instead). The rebuild keeps every row.
    """
    db.executescript(
        """
        CREATE TABLE token_events_new (
            event_key TEXT NOT NULL,         -- hash of the event: redeliveries collapse
            token TEXT NOT NULL,
            page_id TEXT,
            psid TEXT,
            ts_ms INTEGER NOT NULL,
            kind TEXT NOT NULL,              -- optin | stop | resume
            data TEXT NOT NULL,              -- the optin object as delivered (JSON)
            run_id INTEGER,
            path TEXT,
            line INTEGER,
            PRIMARY KEY (ts_ms, event_key)
        ) WITHOUT ROWID;
        INSERT INTO token_events_new (event_key, token, page_id, psid, ts_ms, kind, data, run_id,
                                      path, line)
            SELECT event_key, token, page_id, psid, ts_ms, kind, data, run_id, path, line
            FROM token_events ORDER BY ts_ms, event_key;
        DROP TABLE token_events;
        ALTER TABLE token_events_new RENAME TO token_events;
        CREATE INDEX token_events_token ON token_events(token, ts_ms);
        """
    )

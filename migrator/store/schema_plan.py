"""Workspace tables for the plan concern (registered on MIGRATIONS in schema.py's order).

A plan is stored whole: `plans.body` is the plan file's JSON, and the per-token
assignments are `plan_sends` rows (one per token, numbered in batch order, so a batch is a
send_id range and the executor can fill its ledger with one INSERT ... SELECT).
`plan_excluded` lists the tokens the planner left out (after the audit said migrate) and
why: e.g. over_budget is "which subscribers the budget cannot reach".
"""

from migrator.store.schema import MIGRATIONS


@MIGRATIONS(name="0200_plan")
def _plan(db) -> None:
    db.executescript(
        """
        CREATE TABLE plans (
            plan_id TEXT PRIMARY KEY,          -- 'p' + first 12 hex of the fingerprint
            name TEXT,
            created_at INTEGER NOT NULL,
            as_of TEXT NOT NULL,               -- YYYY-MM-DD
            fingerprint TEXT NOT NULL,
            inputs TEXT NOT NULL,              -- JSON {inventory, audit, content, spec, rules}
            spec_path TEXT,
            rules_version TEXT NOT NULL,
            sends INTEGER NOT NULL,
            sends_digest TEXT NOT NULL,
            body TEXT NOT NULL                 -- the plan file's JSON
        );

        CREATE TABLE plan_campaigns (
            plan_id TEXT NOT NULL,
            campaign_key TEXT NOT NULL,        -- c1, c2, ...
            name TEXT NOT NULL,
            page_id TEXT NOT NULL,
            topic_title TEXT,
            ad_account_id TEXT NOT NULL,
            currency TEXT NOT NULL,
            daily_budget INTEGER,              -- minor units
            lifetime_budget INTEGER,
            start_time INTEGER NOT NULL,
            end_time INTEGER,
            cost_per_message INTEGER NOT NULL,
            sends INTEGER NOT NULL,
            estimated_cost INTEGER NOT NULL,
            unreachable_by_budget INTEGER NOT NULL,
            PRIMARY KEY (plan_id, campaign_key)
        );

        CREATE TABLE plan_messages (
            plan_id TEXT NOT NULL,
            message_key TEXT NOT NULL,         -- m1, m2, ...
            campaign_key TEXT NOT NULL,
            content_id INTEGER,                -- contents.id
            source TEXT NOT NULL,              -- converted | override
            outcome TEXT,
            mm_message TEXT NOT NULL,          -- JSON
            sends INTEGER NOT NULL,
            PRIMARY KEY (plan_id, message_key)
        );

        CREATE TABLE plan_batches (
            plan_id TEXT NOT NULL,
            batch INTEGER NOT NULL,
            day TEXT NOT NULL,                 -- UTC date
            not_before INTEGER NOT NULL,
            first_send_id INTEGER NOT NULL,
            last_send_id INTEGER NOT NULL,
            sends INTEGER NOT NULL,
            PRIMARY KEY (plan_id, batch)
        );

        -- send_id follows batch order: batch b = send_id BETWEEN first_send_id AND last_send_id
        CREATE TABLE plan_sends (
            plan_id TEXT NOT NULL,
            send_id INTEGER NOT NULL,
            token_id INTEGER NOT NULL,         -- tokens.id (never the token itself)
            campaign_key TEXT NOT NULL,
            message_key TEXT NOT NULL,
            batch INTEGER NOT NULL,
            not_before INTEGER NOT NULL,       -- epoch s: inside the subscriber's local window
            PRIMARY KEY (plan_id, send_id)
        ) WITHOUT ROWID;

        CREATE TABLE plan_excluded (
            plan_id TEXT NOT NULL,
            token_id INTEGER NOT NULL,
            reason TEXT NOT NULL,              -- page_excluded | no_ad_account | ... | over_budget
            campaign_key TEXT,
            PRIMARY KEY (plan_id, token_id)
        ) WITHOUT ROWID;

        CREATE VIEW v_plan_sends AS
            SELECT s.plan_id, s.send_id, s.batch, s.token_id, t.token_hash, t.page_id, t.timezone,
                   s.campaign_key, s.message_key, datetime(s.not_before, 'unixepoch') AS not_before_utc
            FROM plan_sends s JOIN tokens t ON t.id = s.token_id;

        CREATE VIEW v_plan_excluded AS
            SELECT e.plan_id, e.token_id, t.token_hash, t.page_id, e.reason, e.campaign_key
            FROM plan_excluded e JOIN tokens t ON t.id = e.token_id;
        """
    )


@MIGRATIONS(name="0541_plan_spec_by_content")
def _plan_spec_by_content(db) -> None:
    """A plan keeps its spec by content: the sha256 of the file's bytes and the text itself
    (plans.spec_path becomes absolute), so it is judged the same from any folder."""
    db.executescript(
        """
        ALTER TABLE plans ADD COLUMN spec_sha256 TEXT;  -- of the spec file's bytes
        ALTER TABLE plans ADD COLUMN spec_text TEXT;    -- the spec as it was when planned
        """
    )


@MIGRATIONS(name="0611_plan_sends_seal")
def _plan_sends_seal(db) -> None:
    """The digest of a plan's rows, computed once and kept while the rows are untouched (issue 19).

    Every `status` and `execute` start compared the plan file's `sends_digest` with a fresh hash of
    the plan's rows (4 s at 4.9M rows). `plan_sends_seal` keeps the hash taken when the plan was made;
    any INSERT, UPDATE or DELETE of that plan's rows afterwards sets `changed`, and the check then
    hashes the rows again (`plan.fingerprint.current_sends_digest`). A trigger writes at most once per
    plan (WHEN ... changed = 0), so rebuilding a plan costs one indexed look-up per row. Plans made
    before this step are sealed here, with the hash of their rows as they are now.
    """
    from migrator.plan.fingerprint import sends_digest

    db.executescript("""
        CREATE TABLE plan_sends_seal (
            plan_id TEXT PRIMARY KEY,
            digest TEXT NOT NULL,              -- sends_digest() of the plan's rows when sealed
            changed INTEGER NOT NULL DEFAULT 0 -- 1: a row of the plan was written since
        );
        CREATE TRIGGER plan_sends_seal_insert AFTER INSERT ON plan_sends
            WHEN EXISTS (SELECT 1 FROM plan_sends_seal WHERE plan_id = NEW.plan_id AND changed = 0)
        BEGIN UPDATE plan_sends_seal SET changed = 1 WHERE plan_id = NEW.plan_id; END;
        CREATE TRIGGER plan_sends_seal_update AFTER UPDATE ON plan_sends
            WHEN EXISTS (SELECT 1 FROM plan_sends_seal WHERE plan_id IN (OLD.plan_id, NEW.plan_id)
                         AND changed = 0)
        BEGIN UPDATE plan_sends_seal SET changed = 1 WHERE plan_id IN (OLD.plan_id, NEW.plan_id); END;
        CREATE TRIGGER plan_sends_seal_delete AFTER DELETE ON plan_sends
            WHEN EXISTS (SELECT 1 FROM plan_sends_seal WHERE plan_id = OLD.plan_id AND changed = 0)
        BEGIN UPDATE plan_sends_seal SET changed = 1 WHERE plan_id = OLD.plan_id; END;
    """)
    conn = db.conn
    for (pid,) in conn.execute("SELECT plan_id FROM plans").fetchall():
        conn.execute("INSERT INTO plan_sends_seal (plan_id, digest) VALUES (?, ?)", (pid, sends_digest(conn, pid)))

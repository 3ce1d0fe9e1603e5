"""What the inventory's tables look like now, as fingerprints a saved plan can be checked against.

`fingerprint(ws)` covers pages and the log of ingest runs that changed tokens or pages;
`content_fingerprint(ws)` the RN content, its conversions and how often each was used.

Tokens are not scanned. Only the inventory's writer changes `tokens` (tests/test_architecture.py
holds every module to that with SQLite's authorizer), and every write it makes belongs to an
ingest run that counts what it accepted (a record identical to what is stored is a duplicate,
not an acceptance), so the list of runs that accepted something is the table's change log: a
fingerprint costs milliseconds at 10M tokens instead of a 20-76 s scan at every `execute` start
and every `status`. The small pages table is hashed row by row with SHA-256.
"""

from __future__ import annotations

from migrator.store.digest import rows_sha, sha


# The ingest kinds that change what the audit and the planner read. Receipts (kind
# 'receipts') are not among them: they settle the executor's ledger (exec_* tables), touch no
# inventory table, and ingesting them is a step of the recovery procedure in the middle of an
# execution (a plan must stay fresh through it). Nor is Meta's feedback (mm_feedback, the
# executor's own record): the claim checks it at send time, the next audit reads it.
INVENTORY_KINDS = ("tokens", "pages")


def fingerprint(ws) -> str:
    """Pages, and every ingest run that accepted something (a CSV snapshot can change any column).

    Not a token's opt-in status, nor a webhook file that only stopped or resumed known tokens
    (`ingest_runs.status_only`): opt-outs arrive all through a cutover and must be ingested to be
    honoured, and the executor re-checks each token's status at the moment it claims a send
    (execute/sendable.py), so they must not make the running plan stale."""
    conn = ws.conn
    pages = rows_sha(conn, "SELECT page_id, name, business_country, ad_account_id, currency "
                           "FROM pages ORDER BY page_id")
    marks = ",".join("?" * len(INVENTORY_KINDS))
    runs = conn.execute(f"SELECT id, kind, accepted FROM ingest_runs WHERE accepted > 0 "
                        f"AND kind IN ({marks}) AND status_only = 0 ORDER BY id", INVENTORY_KINDS).fetchall()
    return sha("inventory/4", pages, [list(r) for r in runs])


def content_fingerprint(ws) -> str:
    """Contents and their conversions, and how often each was used per page/topic/key."""
    conn = ws.conn
    return sha("content/2", rows_sha(
        conn, "SELECT id, content_hash, page_id, topic_title, key, outcome, mm_message, "
              "converter_version, uses FROM contents ORDER BY id"), rows_sha(
        conn, "SELECT page_id, topic_title, key, content_id, COUNT(*) FROM content_records "
              "GROUP BY page_id, topic_title, key, content_id ORDER BY content_id, page_id, topic_title, key"))

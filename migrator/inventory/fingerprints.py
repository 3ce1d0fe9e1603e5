"""What the inventory's tables look like now, as fingerprints a saved plan can be checked against.

`fingerprint(ws)` covers pages, the token columns planning and the audit read, and every
ingest run that changed them; `content_fingerprint(ws)` the RN content, its conversions and
how often each was used. The token table is summarised by order-independent checksums SQLite
computes in one pass (sums and lengths weighted by row id, so a value moving between rows
changes them too): a change detector at 10M-row scale, not a cryptographic digest. The small
tables (pages, contents) are hashed row by row with SHA-256.
"""

from __future__ import annotations

from migrator.store.digest import rows_sha, sha

_TOKENS_SUMS = """
SELECT COUNT(*), MAX(id), TOTAL(id),
       TOTAL(id * (LENGTH(IFNULL(page_id, '')) + 3 * LENGTH(IFNULL(psid, ''))
                   + 5 * LENGTH(IFNULL(topic_title, '')) + 7 * LENGTH(IFNULL(timezone, ''))
                   + 11 * LENGTH(IFNULL(country, ''))
                   + 17 * LENGTH(IFNULL(user_token_status, '')))),
       TOTAL(UNICODE(IFNULL(topic_title, ' ')) + 3 * UNICODE(SUBSTR(IFNULL(timezone, ' '), -2))
             + 5 * UNICODE(IFNULL(country, ' '))),
       TOTAL((IFNULL(next_eligible_at, 0) + 3 * IFNULL(token_expiry, 0)
              + 11 * IFNULL(profile_at, 0)) % 1000003)
FROM tokens
"""

# The ingest kinds that change what the audit and the planner read. Receipts (kind
# 'receipts') are not among them: they settle the executor's ledger (exec_* tables), touch no
# inventory table, and ingesting them is a step of the recovery procedure in the middle of an
# execution (a plan must stay fresh through it). Nor is Meta's feedback (mm_feedback, the
# executor's own record): the claim checks it at send time, the next audit reads it.
INVENTORY_KINDS = ("tokens", "pages")


def fingerprint(ws) -> str:
    """Pages, tokens, and every ingest that accepted something (a CSV snapshot can change any column).

    Not a token's opt-in status, nor a webhook file that only stopped or resumed known tokens
    (`ingest_runs.status_only`): opt-outs arrive all through a cutover and must be ingested to be
    honoured, and the executor re-checks each token's status at the moment it claims a send
    (execute/sendable.py), so they must not make the running plan stale."""
    conn = ws.conn
    pages = rows_sha(conn, "SELECT page_id, name, business_country, ad_account_id, currency "
                           "FROM pages ORDER BY page_id")
    sums = list(conn.execute(_TOKENS_SUMS).fetchone())
    marks = ",".join("?" * len(INVENTORY_KINDS))
    runs = conn.execute(f"SELECT id, kind, accepted FROM ingest_runs WHERE accepted > 0 "
                        f"AND kind IN ({marks}) AND status_only = 0 ORDER BY id", INVENTORY_KINDS).fetchall()
    return sha("inventory/3", pages, sums, [list(r) for r in runs])


def content_fingerprint(ws) -> str:
    """Contents and their conversions, and how often each was used per page/topic/key."""
    conn = ws.conn
    return sha("content/2", rows_sha(
        conn, "SELECT id, content_hash, page_id, topic_title, key, outcome, mm_message, "
              "converter_version, uses FROM contents ORDER BY id"), rows_sha(
        conn, "SELECT page_id, topic_title, key, content_id, COUNT(*) FROM content_records "
              "GROUP BY page_id, topic_title, key, content_id ORDER BY content_id, page_id, topic_title, key"))

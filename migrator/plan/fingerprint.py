"""Fingerprints of every input a plan depends on, so a stale plan can be refused.

Each component is a SHA-256 hex string:
- inventory: the pages table and the token columns planning and the audit read;
- audit: the latest finished audit run (as-of, rules, options) and its per-token results;
- content: the RN content and its conversions;
- spec: the validated spec (comments and layout do not count);
- rules: `Rules.fingerprint()`.
The token-sized tables are summarised by order-independent checksums SQLite computes in
one pass (sums and lengths weighted by row id, plus the ingest runs that accepted
records): a change detector at 10M-row scale, not a cryptographic digest. The small
tables (pages, contents) are hashed row by row with SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

COMPONENTS = ("inventory", "audit", "content", "spec", "rules")

# Order-independent checksums computed by SQLite in one pass (C speed, flat memory): sums
# and lengths of the columns planning and the audit read, weighted by row id so a value
# moving between rows changes them too.
_TOKENS_SUMS = """
SELECT COUNT(*), MAX(id), TOTAL(id),
       TOTAL(id * (LENGTH(IFNULL(page_id, '')) + 3 * LENGTH(IFNULL(psid, ''))
                   + 5 * LENGTH(IFNULL(topic_title, '')) + 7 * LENGTH(IFNULL(timezone, ''))
                   + 11 * LENGTH(IFNULL(country, '')) + 13 * (status = 'active')
                   + 17 * LENGTH(IFNULL(user_token_status, '')))),
       TOTAL(UNICODE(IFNULL(topic_title, ' ')) + 3 * UNICODE(SUBSTR(IFNULL(timezone, ' '), -2))
             + 5 * UNICODE(IFNULL(country, ' '))),
       TOTAL((IFNULL(next_eligible_at, 0) + 3 * IFNULL(token_expiry, 0)
              + 7 * IFNULL(status_at, 0) + 11 * IFNULL(profile_at, 0)) % 1000003)
FROM tokens
"""

_AUDIT_SUMS = """
SELECT verdict, COUNT(*), TOTAL(token_id), TOTAL(token_id * is_primary), TOTAL(token_id * certain),
       TOTAL(flags % 1000003), TOTAL(token_id * LENGTH(IFNULL(region, '')) + UNICODE(IFNULL(region, ' '))),
       TOTAL(LENGTH(IFNULL(page_id, '')))
FROM audit_tokens WHERE run_id = ? GROUP BY verdict ORDER BY verdict
"""


def _sha(*chunks: Any) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(json.dumps(c, sort_keys=True, separators=(",", ":"), default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def _rows_sha(conn: sqlite3.Connection, sql: str) -> str:
    h = hashlib.sha256()
    cur = conn.execute(sql)
    while True:
        rows = cur.fetchmany(5000)
        if not rows:
            break
        for r in rows:
            h.update(repr(tuple(r)).encode())
    return h.hexdigest()


def inventory_fingerprint(conn: sqlite3.Connection) -> str:
    pages = _rows_sha(conn, "SELECT page_id, name, business_country, ad_account_id, currency "
                            "FROM pages ORDER BY page_id")
    sums = list(conn.execute(_TOKENS_SUMS).fetchone())
    # every inventory ingest that accepted something (a CSV snapshot can change any column).
    # Not 'receipts': they describe sends, and ingesting them is a step of the recovery procedure
    # in the middle of an execution (a plan must stay fresh through it). Nor Meta's feedback
    # (mm_feedback, the executor's own writes): the claim checks it at send time.
    runs = conn.execute("SELECT id, kind, accepted FROM ingest_runs WHERE accepted > 0 "
                        "AND kind IN ('tokens', 'pages') ORDER BY id").fetchall()
    return _sha("inventory/2", pages, sums, [list(r) for r in runs])


def latest_audit_run(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT id, as_of, rules_fingerprint, options FROM audit_runs "
                       "WHERE status = 'done' ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return {"id": row[0], "as_of": row[1], "rules_fingerprint": row[2], "options": row[3]}


def audit_fingerprint(conn: sqlite3.Connection) -> str:
    """The audit's results, not its run id: an identical re-run keeps a plan fresh."""
    run = latest_audit_run(conn)
    if run is None:
        return _sha("audit/2", None)
    sums = [list(r) for r in conn.execute(_AUDIT_SUMS, (run["id"],))]
    return _sha("audit/2", run["as_of"], run["rules_fingerprint"], run["options"], sums)


def content_fingerprint(conn: sqlite3.Connection) -> str:
    """Contents and their conversions, and how often each was used per page/topic/key."""
    return _sha("content/2", _rows_sha(
        conn, "SELECT id, content_hash, page_id, topic_title, key, outcome, mm_message, "
              "converter_version, uses FROM contents ORDER BY id"), _rows_sha(
        conn, "SELECT page_id, topic_title, key, content_id, COUNT(*) FROM content_records "
              "GROUP BY page_id, topic_title, key, content_id ORDER BY content_id, page_id, topic_title, key"))


def spec_fingerprint(spec) -> str:
    return hashlib.sha256(spec.canonical_json().encode()).hexdigest()


def workspace_fingerprints(conn: sqlite3.Connection) -> dict[str, str]:
    """The workspace-side components (inventory, audit, content)."""
    return {"inventory": inventory_fingerprint(conn), "audit": audit_fingerprint(conn),
            "content": content_fingerprint(conn)}


def input_fingerprints(conn: sqlite3.Connection, spec, rules) -> dict[str, str]:
    out = workspace_fingerprints(conn)
    out["spec"] = spec_fingerprint(spec)
    out["rules"] = rules.fingerprint()
    return out


def plan_fingerprint(inputs: dict[str, str], as_of: str) -> str:
    """The plan's fingerprint: every input plus the as-of date."""
    return _sha("plan/1", {k: inputs[k] for k in COMPONENTS}, as_of)


def sends_digest(conn: sqlite3.Connection, plan_id: str) -> str:
    """A checksum of a plan's rows in plan_sends (order-independent, one SQLite pass)."""
    row = conn.execute(
        "SELECT COUNT(*), TOTAL(token_id), TOTAL(not_before % 1000003),"
        " TOTAL(send_id * ((token_id % 1000003) + 3 * (not_before % 1000003) + 5 * batch"
        "  + 7 * CAST(SUBSTR(campaign_key, 2) AS INTEGER) + 11 * CAST(SUBSTR(message_key, 2) AS INTEGER)))"
        " FROM plan_sends WHERE plan_id = ?", (plan_id,)).fetchone()
    return _sha("sends/1", list(row))

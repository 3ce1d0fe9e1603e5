"""Fingerprints of every input a plan depends on, so a stale plan can be refused.

Each component is a SHA-256 hex string:
- inventory: the pages table and the token columns planning and the audit read;
- audit: the latest finished audit run (as-of, rules, options) and its per-token results;
- content: the RN content and its conversions;
- spec: the validated spec (comments and layout do not count);
- rules: `Rules.fingerprint()`.
Token tables are hashed with an order-independent sum of CRC-32s computed inside SQLite
(one pass, flat memory); the small tables with SHA-256 over their rows in id order.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from typing import Any

COMPONENTS = ("inventory", "audit", "content", "spec", "rules")

_TOKEN_COLS = ("id", "page_id", "psid", "topic_title", "timezone", "country", "status",
               "user_token_status", "token_expiry", "next_eligible_at", "mm_state")


def _crc(*parts: Any) -> int:
    return zlib.crc32("\x1f".join("" if p is None else str(p) for p in parts).encode())


def _install(conn: sqlite3.Connection) -> None:
    conn.create_function("plan_crc", -1, _crc, deterministic=True)


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
    _install(conn)
    pages = _rows_sha(conn, "SELECT page_id, name, business_country, ad_account_id, currency "
                            "FROM pages ORDER BY page_id")
    cols = ", ".join(_TOKEN_COLS)
    n, total = conn.execute(f"SELECT COUNT(*), TOTAL(plan_crc({cols})) FROM tokens").fetchone()
    return _sha("inventory/1", pages, n, int(total))


def latest_audit_run(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT id, as_of, rules_fingerprint, options FROM audit_runs "
                       "WHERE status = 'done' ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return {"id": row[0], "as_of": row[1], "rules_fingerprint": row[2], "options": row[3]}


def audit_fingerprint(conn: sqlite3.Connection) -> str:
    """The audit's results, not its run id: an identical re-run keeps a plan fresh."""
    _install(conn)
    run = latest_audit_run(conn)
    if run is None:
        return _sha("audit/1", None)
    n, total = conn.execute(
        "SELECT COUNT(*), TOTAL(plan_crc(token_id, page_id, verdict, certain, region, is_primary)) "
        "FROM audit_tokens WHERE run_id = ?", (run["id"],)).fetchone()
    return _sha("audit/1", run["as_of"], run["rules_fingerprint"], run["options"], n, int(total))


def content_fingerprint(conn: sqlite3.Connection) -> str:
    return _sha("content/1", _rows_sha(
        conn, "SELECT id, content_hash, page_id, topic_title, key, outcome, mm_message, "
              "converter_version, uses FROM contents ORDER BY id"))


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

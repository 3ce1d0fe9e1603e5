"""Fingerprints of every input a plan depends on, so a stale plan can be refused.

Each component is a SHA-256 hex string, computed by the concern that owns the tables:
- inventory: `migrator.inventory.fingerprint` (pages, the token columns planning and the
  audit read, the ingest runs that changed them);
- audit: `migrator.audit.fingerprint` (the latest finished run's as-of, rules, options and
  per-token results);
- content: `migrator.inventory.content_fingerprint` (the RN content and its conversions);
- spec: the validated spec (comments and layout do not count);
- rules: `Rules.fingerprint()`.
This module only combines them, and digests the planner's own rows (`sends_digest`). That digest
is taken once, when the plan is made (`seal_sends`), and kept in `plan_sends_seal`; triggers mark
it `changed` at any later write of the plan's rows, and only then is it taken again
(`current_sends_digest`), so a staleness check costs a look-up, not a pass over millions of rows.
"""

from __future__ import annotations

import hashlib
import sqlite3

from migrator import audit, inventory
from migrator.store.digest import sha

COMPONENTS = ("inventory", "audit", "content", "spec", "rules")


def spec_fingerprint(spec) -> str:
    return hashlib.sha256(spec.canonical_json().encode()).hexdigest()


def workspace_fingerprints(ws) -> dict[str, str]:
    """The workspace-side components (inventory, audit, content) of workspace `ws`."""
    return {"inventory": inventory.fingerprint(ws), "audit": audit.fingerprint(ws),
            "content": inventory.content_fingerprint(ws)}


def input_fingerprints(ws, spec, rules) -> dict[str, str]:
    out = workspace_fingerprints(ws)
    out["spec"] = spec_fingerprint(spec)
    out["rules"] = rules.fingerprint()
    return out


def plan_fingerprint(inputs: dict[str, str], as_of: str) -> str:
    """The plan's fingerprint: every input plus the as-of date."""
    return sha("plan/1", {k: inputs[k] for k in COMPONENTS}, as_of)


def sends_digest(conn: sqlite3.Connection, plan_id: str) -> str:
    """A checksum of a plan's rows in plan_sends (order-independent, one SQLite pass)."""
    row = conn.execute(
        "SELECT COUNT(*), TOTAL(token_id), TOTAL(not_before % 1000003),"
        " TOTAL(send_id * ((token_id % 1000003) + 3 * (not_before % 1000003) + 5 * batch"
        "  + 7 * CAST(SUBSTR(campaign_key, 2) AS INTEGER) + 11 * CAST(SUBSTR(message_key, 2) AS INTEGER)))"
        " FROM plan_sends WHERE plan_id = ?", (plan_id,)).fetchone()
    return sha("sends/1", list(row))


def seal_sends(conn: sqlite3.Connection, plan_id: str) -> str:
    """Digest the plan's rows now and keep the digest (`plan_sends_seal`); returns it.

    Called by the planner once its rows are written, in the plan's transaction."""
    digest = sends_digest(conn, plan_id)
    conn.execute("INSERT OR REPLACE INTO plan_sends_seal (plan_id, digest, changed) VALUES (?, ?, 0)",
                 (plan_id, digest))
    return digest


def current_sends_digest(conn: sqlite3.Connection, plan_id: str) -> str:
    """`sends_digest` of the plan's rows as they are now, without hashing them when they were not
    written since they were sealed (the triggers of `plan_sends_seal` say so)."""
    row = conn.execute("SELECT digest, changed FROM plan_sends_seal WHERE plan_id = ?", (plan_id,)).fetchone()
    if row is not None and not row[1]:
        return row[0]
    return sends_digest(conn, plan_id)

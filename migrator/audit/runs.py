"""The audit's answers about its own tables: the latest finished run, and its fingerprint.

Every reader of "the latest audit" (the planner, the reports, `audit_freshness`) asks
`latest_run(ws)`; the plan's staleness check asks `fingerprint(ws)`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from migrator.store.digest import sha

# per verdict: counts and order-independent sums of what the planner reads from audit_tokens
_AUDIT_SUMS = """
SELECT verdict, COUNT(*), TOTAL(token_id), TOTAL(token_id * is_primary), TOTAL(token_id * certain),
       TOTAL(flags % 1000003), TOTAL(token_id * LENGTH(IFNULL(region, '')) + UNICODE(IFNULL(region, ' '))),
       TOTAL(LENGTH(IFNULL(page_id, '')))
FROM audit_tokens WHERE run_id = ? GROUP BY verdict ORDER BY verdict
"""


@dataclass(frozen=True)
class AuditRun:
    """One finished row of `audit_runs`, its JSON columns parsed."""

    id: int
    as_of: str                      # YYYY-MM-DD
    rules_version: str
    rules_fingerprint: str
    started_at: int
    finished_at: int | None
    options: dict[str, Any] = field(default_factory=dict)
    rules_origins: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)   # `AuditResult.to_json()` of the run
    options_json: str | None = None                          # the stored text (fingerprinted as is)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("options_json")
        return d


def latest_run(ws) -> AuditRun | None:
    """The latest finished audit run of the workspace, or None when there is none."""
    row = ws.conn.execute(
        "SELECT id, as_of, rules_version, rules_fingerprint, started_at, finished_at, options,"
        " rules_origins, summary FROM audit_runs WHERE status = 'done' ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return AuditRun(id=row[0], as_of=row[1], rules_version=row[2], rules_fingerprint=row[3],
                    started_at=row[4], finished_at=row[5], options=json.loads(row[6] or "{}"),
                    rules_origins=json.loads(row[7] or "[]"), summary=json.loads(row[8] or "{}"),
                    options_json=row[6])


def results_sums(conn, run_id: int) -> list[list]:
    """Per verdict, the counts and checksums of a run's results (one scan of its rows)."""
    return [list(r) for r in conn.execute(_AUDIT_SUMS, (run_id,))]


def fingerprint(ws) -> str:
    """The latest audit's results, not its run id: an identical re-run keeps a plan fresh.

    The checksums are the ones the audit stored when it finished (`audit_runs.results_digest`),
    so this costs a lookup, not a scan; a run from before that column is summed now."""
    run = latest_run(ws)
    if run is None:
        return sha("audit/2", None)
    stored = ws.conn.execute("SELECT results_digest FROM audit_runs WHERE id = ?", (run.id,)).fetchone()[0]
    sums = json.loads(stored) if stored else results_sums(ws.conn, run.id)
    return sha("audit/2", run.as_of, run.rules_fingerprint, run.options_json, sums)


def audit_freshness(ws) -> dict[str, Any] | None:
    """The latest finished audit run and whether the workspace changed after it.

    `stale` is true when an ingest run finished after the audit started: tokens, pages or
    content may differ from what the audit judged, so `migrator audit` should run again.
    None when there is no finished audit.
    """
    run = latest_run(ws)
    if run is None:
        return None
    later = ws.conn.execute(
        "SELECT COUNT(*) FROM ingest_runs WHERE coalesce(finished_at, started_at) >= ?",
        (run.started_at,)).fetchone()[0]
    return {"run_id": run.id, "as_of": run.as_of, "rules_version": run.rules_version,
            "rules_fingerprint": run.rules_fingerprint, "finished_at": run.finished_at,
            "stale": later > 0, "ingests_since": later}

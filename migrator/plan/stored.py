"""The planner's answers about its own `plans` table: the latest saved plan, or one by id.

Every reader of "the latest plan" (the reports: readiness, audit, execution) asks `latest(ws)`,
as they ask `audit.latest_run(ws)` for the latest audit, so the table's shape stays the
planner's own business.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

_COLUMNS = "plan_id, name, created_at, as_of, fingerprint, spec_path, body"


@dataclass(frozen=True)
class StoredPlan:
    """One row of `plans`, its body (the plan file's JSON) parsed."""

    plan_id: str
    name: str | None
    created_at: int
    as_of: str                      # YYYY-MM-DD
    fingerprint: str
    spec_path: str | None           # the spec file the plan was made from (it may be gone since)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def audit_run_id(self) -> int | None:
        """The audit run the plan was made from."""
        return self.body.get("audit_run_id")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["audit_run_id"] = self.audit_run_id
        return d


def _row(row) -> StoredPlan | None:
    if row is None:
        return None
    return StoredPlan(plan_id=row[0], name=row[1], created_at=row[2], as_of=row[3], fingerprint=row[4],
                      spec_path=row[5], body=json.loads(row[6] or "{}"))


def latest(ws) -> StoredPlan | None:
    """The workspace's most recently saved plan, or None when there is none."""
    return _row(ws.conn.execute(f"SELECT {_COLUMNS} FROM plans ORDER BY created_at DESC, rowid DESC LIMIT 1")
                .fetchone())


def stored(ws, plan_id: str) -> StoredPlan | None:
    """The saved plan `plan_id`, or None when the workspace has no such plan."""
    return _row(ws.conn.execute(f"SELECT {_COLUMNS} FROM plans WHERE plan_id = ?", (plan_id,)).fetchone())

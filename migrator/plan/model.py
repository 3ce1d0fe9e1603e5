"""The saved plan: what `migrator plan -o PLAN.json` writes and `execute` reads.

The file holds the reviewable part (campaigns, messages, batches, costs, exclusions,
input fingerprints). Per-token assignments stay in the workspace table `plan_sends`
(1M sends would be ~60 MB of JSON); the file carries their count and a SHA-256 digest
(`sends_digest`) so `execute` can prove the rows it drives are the ones reviewed.
Nothing here is secret: no access tokens, no subscription tokens, no PSIDs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from migrator.errors import PlanError

PLAN_FORMAT = "migrator-plan/1"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanCampaign(_M):
    key: str                      # c1, c2, ... (stable: ordered by page id, topic)
    name: str
    page_id: str
    topic_title: str | None       # None for a campaign covering every topic of the page
    ad_account_id: str
    currency: str
    daily_budget: int | None
    lifetime_budget: int | None
    start_time: int               # epoch s, UTC
    end_time: int | None
    cost_per_message: int         # minor units
    cost_source: str              # spec | estimate
    messages: list[str]
    sends: int
    estimated_cost: int           # minor units: sends x cost_per_message
    budget_total: int | None      # lifetime budget, or daily budget x days spanned by the sends
    unreachable_by_budget: int
    first_send_at: int | None
    last_send_at: int | None


class PlanMessage(_M):
    key: str                      # m1, m2, ...
    campaign_key: str
    content_id: int | None        # contents.id when the message comes from RN content
    source: str                   # converted | override
    outcome: str | None           # the converter's outcome (exact | lossy | ...)
    message: dict[str, Any]       # the MM message object to send
    sends: int


class PlanBatch(_M):
    batch: int
    day: str                      # UTC date the batch belongs to
    not_before: int               # earliest send of the batch (epoch s)
    first_send_id: int
    last_send_id: int
    sends: int


class SavedPlan(_M):
    format: str = PLAN_FORMAT
    plan_id: str
    name: str
    created_at: int
    as_of: str
    rules_version: str
    fingerprint: str
    inputs: dict[str, str]        # inventory, audit, content, spec, rules -> sha256
    spec_path: str | None         # absolute (plan/spec_source.py)
    rules_path: str | None
    workspace: str
    spec_sha256: str | None = None  # of the spec file's bytes: staleness is judged by content
    audit_run_id: int | None
    campaigns: list[PlanCampaign]
    messages: list[PlanMessage]
    batches: list[PlanBatch]
    sends: int
    sends_table: str = "plan_sends"
    sends_digest: str
    estimated_cost: dict[str, int]          # currency -> minor units
    budget: dict[str, int | None]           # currency -> minor units (None: unbounded)
    unreachable_by_budget: int
    excluded: dict[str, int]
    warnings: list[str]
    zero_send_reason: str | None
    # the schedule's local send window, so execute can hold it at send time (None: older plans)
    window: str | None = None               # HH:MM-HH:MM in the subscriber's zone
    default_timezone: str | None = None     # the zone of tokens without a usable one

    def summary_json(self) -> dict[str, Any]:
        """What `migrator plan --json` prints."""
        return {
            "plan_id": self.plan_id,
            "fingerprint": self.fingerprint,
            "campaigns": len(self.campaigns),
            "messages": len(self.messages),
            "sends": self.sends,
            "batches": len(self.batches),
            "estimated_cost": self.estimated_cost,
            "budget": self.budget,
            "unreachable_by_budget": self.unreachable_by_budget,
            "excluded": self.excluded,
            "as_of": self.as_of,
            "rules_version": self.rules_version,
            "zero_send_reason": self.zero_send_reason,
            "warnings": self.warnings,
        }

    def to_file_text(self) -> str:
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False, indent=1) + "\n"


def write_plan(plan: SavedPlan, path: str | Path, *, force: bool = False, reads=(),
               workspace=None) -> Path:
    """Write the plan file atomically, never over its spec, the workspace or a file migrator
    did not write (migrator.outputs)."""
    from migrator.outputs import write_text_safely

    return write_text_safely(path, plan.to_file_text(), force=force, reads=reads, workspace=workspace)


def load_plan(path: str | Path) -> SavedPlan:
    """Read a saved plan file; PlanError says what is wrong with it."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{p}: no such plan file", hint="make one with `migrator plan SPEC.toml -o PLAN.json`") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{p}: not a plan file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise PlanError(f"{p}: not a {PLAN_FORMAT} plan file",
                        hint="make one with `migrator plan SPEC.toml -o PLAN.json`")
    try:
        return SavedPlan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        raise PlanError(f"{p}: {where}: {first['msg']}", hint="the file was edited or truncated; "
                        "make a new plan") from None

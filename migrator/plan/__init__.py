"""The planner: spec (TOML) + workspace -> a reviewable, costed, saved plan (plan/apply).

Public API:
- `load_spec(path) -> PlanSpec`, `spec_schema()`: the spec and its JSON Schema;
- `make_plan(ws, spec_path, as_of=, rules_path=, out=)` / `build_plan(ws, spec, ...)`
  -> `SavedPlan` (also stored in the workspace: plans, plan_campaigns, plan_messages,
  plan_batches, plan_sends, plan_excluded);
- `load_plan(path)`, `write_plan(plan, path)`;
- `latest(ws)` / `stored(ws, plan_id)` -> `StoredPlan | None`: the saved plans, as the
  reports read them (mirrors `audit.latest_run(ws)`);
- `plan_staleness(ws, plan) -> list[str]` ([] = fresh), `check_fresh(ws, plan)` raises
  StalePlanError.
See docs/plan.md.
"""

from migrator.plan.build import build_plan, make_plan
from migrator.plan.campaigns import budget_capacity
from migrator.plan.model import PlanBatch, PlanCampaign, PlanMessage, SavedPlan, load_plan, write_plan
from migrator.plan.spec import PlanSpec, load_spec, spec_from_dict, spec_schema
from migrator.plan.staleness import check_fresh, plan_staleness
from migrator.plan.stored import StoredPlan, latest, stored

__all__ = ["PlanBatch", "PlanCampaign", "PlanMessage", "PlanSpec", "SavedPlan", "StoredPlan", "budget_capacity",
           "build_plan", "check_fresh", "latest", "load_plan", "load_spec", "make_plan", "plan_staleness",
           "spec_from_dict", "spec_schema", "stored", "write_plan"]

"""Does a saved plan still match the workspace, spec and rules it was made from?

`plan_staleness(ws, plan)` returns [] when the plan is fresh, otherwise one sentence per
input that changed. `execute` refuses a stale plan; `migrator status` shows the sentences.
"""

from __future__ import annotations

from migrator.errors import StalePlanError
from migrator.plan.fingerprint import current_sends_digest, workspace_fingerprints
from migrator.plan.model import SavedPlan

_WORDS = {
    "inventory": "the inventory changed (tokens or pages were ingested, pulled or updated since the plan)",
    "audit": "the audit results changed (a new audit decided differently, or with another as-of date "
             "or rules)",
    "content": "the RN content or its conversion changed",
}


def plan_staleness(ws, plan: SavedPlan, *, spec=None, rules=None) -> list[str]:
    """Sentences saying what changed since `plan` was made; [] = fresh.

    `spec` / `rules` default to re-reading `plan.spec_path` / `plan.rules_path`.
    """
    out: list[str] = []
    conn = ws.conn
    row = conn.execute("SELECT fingerprint, sends, sends_digest, body FROM plans WHERE plan_id = ?",
                       (plan.plan_id,)).fetchone()
    if row is None:
        out.append(f"this workspace does not hold plan {plan.plan_id} (made with the workspace "
                   f"{plan.workspace or 'another workspace'}, or replaced)")
    elif (row[0], row[1], row[2]) != (plan.fingerprint, plan.sends, plan.sends_digest) \
            or not _same_body(row[3], plan):
        # the executor reads the window, campaign ends and names from the file: an edit there
        # (a window deleted or widened, an end removed) is not covered by the fingerprint
        out.append(f"the workspace's copy of plan {plan.plan_id} differs from the plan file")
    elif current_sends_digest(conn, plan.plan_id) != plan.sends_digest:
        out.append(f"the workspace's rows of plan {plan.plan_id} were changed")
    now = workspace_fingerprints(ws)
    for k in ("inventory", "audit", "content"):
        if now[k] != plan.inputs.get(k):
            out.append(_WORDS[k])
    out.extend(_spec_change(ws, plan, spec))
    out.extend(_rules_change(plan, rules))
    return out


def _same_body(body: str | None, plan: SavedPlan) -> bool:
    """The plan file says what the workspace kept when the plan was made (field by field)."""
    if not body:
        return True
    try:
        return SavedPlan.model_validate_json(body) == plan
    except ValueError:
        return False


def _spec_change(ws, plan: SavedPlan, spec) -> list[str]:
    from migrator.plan.spec_source import spec_change

    return spec_change(ws, plan, spec)


def _rules_change(plan: SavedPlan, rules) -> list[str]:
    if rules is None:
        from migrator.errors import RulesError
        from migrator.rules import load_rules

        try:
            rules = load_rules(plan.rules_path)
        except RulesError as exc:
            return [f"the rules can no longer be read: {exc.message}"]
    if rules.fingerprint() != plan.inputs.get("rules"):
        return [f"the rules changed (plan made with rules {plan.rules_version}, now {rules.version})"]
    return []


def check_fresh(ws, plan: SavedPlan, **kw) -> None:
    """Raise StalePlanError (exit 1) listing what changed, for `execute`."""
    changes = plan_staleness(ws, plan, **kw)
    if changes:
        raise StalePlanError("the plan is stale: " + "; ".join(changes),
                             hint="make a new plan: migrator plan SPEC.toml -o PLAN.json")

"""Where a plan's spec came from, kept so that the plan can be judged by content anywhere.

A plan used to keep its spec as the path it was given (`plans/sample.toml`): run from another
folder, the spec could not be found and the plan was refused as stale. A plan now keeps the
spec's absolute path and the sha256 of its bytes, and the workspace keeps the spec's text
(`plans.spec_text`), so staleness is judged by content:
- the file at the absolute path (else at the path as given, from here) has the same bytes:
  fresh, without even parsing it;
- it has other bytes: parsed, and stale only when the validated spec differs (comments and
  layout do not count, as before);
- no file is found: the plan is judged against the text the workspace kept (it is what the
  plan was made from), so a moved or deleted spec does not make a plan stale.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from migrator.errors import PlanError


def record_spec_source(ws, plan, spec_path: str | Path | None, text: str | None = None) -> None:
    """Set `plan.spec_path` (absolute) and `plan.spec_sha256`, and keep the spec's text in
    the workspace's row of the plan. Call right after the plan is built and stored."""
    if spec_path is None:
        return
    p = Path(spec_path).resolve()
    try:
        data = p.read_bytes()
    except OSError:
        return
    plan.spec_path = str(p)
    plan.spec_sha256 = hashlib.sha256(data).hexdigest()
    if text is None:
        from migrator.plan.spec import read_spec_text

        try:
            text = read_spec_text(p)  # UTF-8 / UTF-16 as load_spec read it
        except PlanError:
            text = None
    ws.conn.execute("UPDATE plans SET spec_path = ?, spec_sha256 = ?, spec_text = ?, body = ?"
                    " WHERE plan_id = ?",
                    (plan.spec_path, plan.spec_sha256, text, plan.to_file_text(), plan.plan_id))


def locate_spec(plan) -> Path | None:
    """The spec file a plan names: its absolute path, else the path as given from here."""
    for candidate in filter(None, (plan.spec_path,)):
        p = Path(candidate)
        if p.is_file():
            return p
    return None


def spec_change(ws, plan, spec=None) -> list[str]:
    """[] when the plan's spec is unchanged by content, else one sentence."""
    from migrator.plan.fingerprint import spec_fingerprint
    from migrator.plan.spec import load_spec, spec_from_text

    where = plan.spec_path or ""
    if spec is None:
        if not plan.spec_path:
            return []
        path = locate_spec(plan)
        if path is None:
            row = ws.conn.execute("SELECT spec_text FROM plans WHERE plan_id = ?", (plan.plan_id,)).fetchone()
            if row is None or row[0] is None:
                return [f"the spec {where} can no longer be read: no such file (and this workspace "
                        "does not keep its text)"]
            try:
                spec = spec_from_text(row[0], where=f"{where} (as kept in the workspace)")
            except PlanError as exc:
                return [f"the spec kept in the workspace cannot be read: {exc.message.splitlines()[0]}"]
        else:
            try:
                data = path.read_bytes()
            except OSError as exc:
                return [f"the spec {where} can no longer be read: {exc.strerror}"]
            if plan.spec_sha256 and hashlib.sha256(data).hexdigest() == plan.spec_sha256:
                return []
            try:
                spec = load_spec(path)
            except PlanError as exc:
                return [f"the spec {where} can no longer be read: {exc.message.splitlines()[0]}"]
    if spec_fingerprint(spec) != plan.inputs.get("spec"):
        return [f"the spec {where} changed".replace("  ", " ")]
    return []


def check_plan_workspace(plan, db_path: Path) -> None:
    """Before a command opens `db_path` for a plan: never create an empty workspace for it;
    say which workspace the plan belongs to instead."""
    if db_path.exists():
        return
    owner = plan.workspace or "another workspace"
    raise PlanError(f"no workspace at {db_path}; plan {plan.plan_id} belongs to the workspace {owner}",
                    hint=f"pass --db {owner} (or set MIGRATOR_DB)")

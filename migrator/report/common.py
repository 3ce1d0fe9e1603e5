"""Pieces every report builder shares: provenance header, glossary, money, the latest runs."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

from migrator import __version__
from migrator.errors import MigratorError, RulesError
from migrator.money import format_money
from migrator.report.models import Provenance, RuleSource, Term
from migrator.rules import Rules, load_rules

Clock = Callable[[], float]

GLOSSARY: dict[str, str] = {
    "RN": "Recurring Notifications: Messenger's old opt-in messages, which stop working in most "
          "countries on the discontinuation date.",
    "MM": "Marketing Messages: Meta's paid replacement for RN, sent through the business's ad account.",
    "Subscription": "One person's opt-in to one topic of one page (a 'token'); a person can hold several.",
    "Opt-in": "The person's own request to receive these messages; only they can give it.",
    "Ad account": "The Meta advertising account that pays for MM messages (act_<number>).",
    "Business country": "The country of the business behind the page; MM is open only to some countries.",
    "Recipient region": "The country of the person receiving messages; MM does not deliver to some regions.",
    "Inferred region": "A country guessed from the person's time zone rather than stated by the partner: "
                       "an inference, not a fact.",
    "As-of date": "The day the audit judged the estate for; verdicts can change as dates pass.",
    "Short hash": "A 12-character fingerprint of a token or person id, so they are never shown in full.",
}


class ReportError(MigratorError):
    """A report cannot be built from this workspace (e.g. no audit or plan yet)."""


def glossary(*terms: str) -> list[Term]:
    names = terms or tuple(GLOSSARY)
    return [Term(term=t, meaning=GLOSSARY[t]) for t in names]


def iso_utc(ts: float | int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(minor: int | None, currency: str | None) -> str | None:
    """Minor units to a readable amount (the shared formatter: migrator.money.format_money)."""
    return format_money(minor, currency)


def latest_audit_run(ws) -> dict[str, Any]:
    """`migrator.audit.latest_run(ws)` as a dict, or a ReportError saying to run the audit."""
    from migrator.audit import latest_run

    run = latest_run(ws)
    if run is None:
        raise ReportError("this workspace has no finished audit yet",
                          hint="run `migrator audit` (after `migrator ingest ...`), then the report again")
    return run.to_dict()


def latest_plan(ws) -> dict[str, Any] | None:
    """`migrator.plan.latest(ws)` as a dict (with its parsed body and spec path), or None."""
    from migrator.plan import latest

    plan = latest(ws)
    return None if plan is None else plan.to_dict()


def rules_for_run(run: dict[str, Any] | None, rules: Rules | None = None) -> tuple[Rules, str | None]:
    """The rules the audit ran with, as far as they can be reloaded, and a note if they may differ."""
    if rules is None:
        overrides = [o for o in (run or {}).get("rules_origins", []) if o != "package"]
        rules = load_rules()
        for o in overrides:
            if Path(o).is_file():
                try:
                    rules = load_rules(o)
                except RulesError:
                    pass
    note = None
    if run is not None and rules.fingerprint() != run["rules_fingerprint"]:
        note = ("The rules shown here are not the ones this audit ran with (fingerprint "
                f"{run['rules_fingerprint'][:12]}); re-run `migrator audit` to judge with the rules in force.")
    return rules, note


def rule_sources(rules: Rules) -> list[RuleSource]:
    out = []
    for name in rules.entry_names():
        e = getattr(rules, name)
        v = e.value
        value = ", ".join(map(str, v)) if isinstance(v, list) else (v.isoformat() if isinstance(v, date)
                                                                    else str(v))
        out.append(RuleSource(name=name, value=value, sources=list(e.sources),
                              verified=e.verified.isoformat(), origin=e.origin))
    return out


def provenance(ws, run: dict[str, Any] | None, rules: Rules, note: str | None,
               plan: dict[str, Any] | None, clock: Clock = time.time) -> Provenance:
    return Provenance(
        migrator_version=__version__,
        generated_at=iso_utc(clock()),
        as_of=run["as_of"] if run else None,
        audit_run_id=run["id"] if run else None,
        workspace=Path(str(ws.path)).name if getattr(ws, "path", None) else "",
        rules_version=run["rules_version"] if run else rules.version,
        rules_fingerprint=run["rules_fingerprint"] if run else rules.fingerprint(),
        rules_note=note,
        rules=rule_sources(rules),
        plan_id=plan["plan_id"] if plan else None,
        plan_fingerprint=plan["fingerprint"] if plan else None,
        plan_note=_plan_note(run, plan),
    )


def _plan_note(run: dict[str, Any] | None, plan: dict[str, Any] | None) -> str | None:
    if not run or not plan or plan.get("audit_run_id") in (None, run["id"]):
        return None
    return (f"Plan {plan['plan_id']} was made from audit run {plan['audit_run_id']}, not from the latest "
            f"audit (run {run['id']}): its counts and costs may be out of date; re-run `migrator plan`.")

"""The execution report model (for engineers): per plan, campaign and batch, what happened.

Counts come from the executor's send ledger (`exec_sends`: planned, in_flight, sent,
skipped, failed, unknown, plus delivered/read receipts) when the workspace has one for the
plan; otherwise the report shows the plan alone (planned counts and cost) and says so.
Error meanings come from the Graph error table (`migrator.graph.classify.table_rows()`).
All per-send work is GROUP BY in SQLite: flat memory for millions of sends.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from migrator.report.common import (Clock, ReportError, glossary, iso_utc, latest_audit_run, money, provenance,
                                    rules_for_run)
from migrator.report.models import (BatchExec, CampaignExec, Counts, Countdown, ErrorRow, ExecutionReport,
                                    RunRow, Term, ThroughputPoint)
from migrator.rules import Rules
from migrator.words import plural

MAX_POINTS = 96        # throughput buckets drawn; hours when they fit, else days
STATES = ("planned", "in_flight", "sent", "skipped", "failed", "unknown")


def _has_table(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def resolve_plan(ws, plan: str | None) -> dict[str, Any]:
    """A plan id, a plan file (its plan_id) or None (the latest plan) -> the plans row."""
    plan_id = None
    if plan:
        p = Path(plan)
        if p.is_file():
            from migrator.plan import load_plan
            plan_id = load_plan(p).plan_id
        else:
            plan_id = plan
    from migrator.plan import latest, stored

    found = stored(ws, plan_id) if plan_id else latest(ws)
    if found is None:
        if plan_id:
            raise ReportError(f"no plan {plan_id!r} in this workspace",
                              hint="list plans with: sqlite3 WORKSPACE 'SELECT plan_id, name FROM plans'")
        raise ReportError("this workspace has no plan yet", hint="make one with `migrator plan SPEC.toml -o PLAN.json`")
    return found.to_dict()


def _meanings() -> dict[str, tuple[str, str | None]]:
    """Error code (as text, e.g. '2300032', '100/2018001', '368-369') -> (meaning, class)."""
    from migrator.graph.classify import table_rows

    out: dict[str, tuple[str, str | None]] = {}
    for r in table_rows():
        key = str(r["code"])
        if key not in out or (r.get("reading") or "").endswith("(default)"):
            out[key] = (r["meaning"], r.get("class"))
    return out


# the executor's own skips (claim-time checks, execute/sendable.py): no Graph error code, so the
# report says here what each means, instead of printing the bare reason
SKIP_MEANINGS = {
    "sent_by_another_plan": "skipped, not sent: another plan of this workspace already sent an MM message to "
                            "this person (the token or another token of the same page + PSID), or may have "
                            "(its send is in flight or unknown); a subscription moves to MM once",
    "opted_out_during_run": "skipped, not sent: the person stopped notifications or opted out of MM after the "
                            "plan was made",
    "window_missed": "skipped, not sent: the send could only go after its campaign's end, or missed the "
                     "recipient's local send window (--late skip)",
    "token_invalid": "skipped, not sent: Meta said the subscription token is invalid",
    "token_expired": "skipped, not sent: Meta said the subscription token expired",
    "token_wrong_region": "skipped, not sent: Meta said the recipient is in a region MM cannot reach",
    "token_page_mismatch": "skipped, not sent: Meta said the token belongs to another Page",
}


def _meaning_of(code: int | None, reason: str | None, table: dict[str, tuple[str, str | None]]) -> tuple[str, str | None]:
    if code is None and reason and reason.startswith("campaign_stopped:") and reason.split(":", 1)[1].isdigit():
        # skipped without a request of its own: Meta's answer to another send stopped the campaign
        stop = reason.split(":", 1)[1]
        meaning, cls = _meaning_of(int(stop), None, table)
        return (f"skipped, not sent: Meta stopped the campaign with error {stop} ({meaning}); "
                "these sends are not retried"), cls
    if code is None and reason in SKIP_MEANINGS:
        return SKIP_MEANINGS[reason], None
    if code is None:
        return (f"no Graph error code; reason: {reason}" if reason else "no Graph error code"), None
    if str(code) in table:
        return table[str(code)]
    for key, val in table.items():
        if "-" in key and not key.startswith("network"):
            lo, _, hi = key.partition("-")
            if lo.isdigit() and hi.isdigit() and int(lo) <= code <= int(hi):
                return val
        if "/" in key and key.split("/", 1)[0] == str(code):
            return val
    return "not in the error table (see the raw error in exec_sends.error)", None


def _ledger_counts(conn, plan_id: str, group: str) -> dict[Any, Counts]:
    """Counts per `group` (campaign_key, batch or plan_id) from the ledger's counters
    (`exec_send_counts`, one row per plan, campaign, batch and state, kept by triggers on every
    write of `exec_sends`, as `status` reads them): a few thousand rows where grouping the ledger
    itself read every send (6.5 s of the 10M execution report's 18.6 s)."""
    rows = conn.execute(
        f"SELECT {group}, SUM(n), SUM(n * (state = 'sent')), SUM(n * (state = 'skipped')),"
        f" SUM(n * (state = 'failed')), SUM(n * (state = 'unknown' OR state = 'in_flight')), SUM(delivered), SUM(read)"
        f" FROM exec_send_counts WHERE plan_id = ? GROUP BY {group} HAVING SUM(n) > 0", (plan_id,))
    return {r[0]: Counts(planned=r[1], sent=r[2], skipped=r[3], failed=r[4], unknown=r[5], delivered=r[6],
                         read=r[7]) for r in rows}


def _throughput(conn, plan_id: str, ledger: bool) -> tuple[list[ThroughputPoint], str]:
    span = conn.execute("SELECT MIN(not_before), MAX(not_before) FROM plan_sends WHERE plan_id = ?",
                        (plan_id,)).fetchone()
    lo, hi = span
    if ledger:
        s = conn.execute("SELECT MIN(sent_at), MAX(sent_at) FROM exec_sends WHERE plan_id = ? AND state = 'sent' AND sent_at IS NOT NULL",
                         (plan_id,)).fetchone()
        lo = min(x for x in (lo, s[0]) if x is not None) if (lo or s[0]) else None
        hi = max(x for x in (hi, s[1]) if x is not None) if (hi or s[1]) else None
    if lo is None:
        return [], "hour"
    size, unit = (3600, "hour") if (hi - lo) // 3600 < MAX_POINTS else (86400, "day")
    planned = dict(conn.execute(f"SELECT (not_before / {size}) * {size}, COUNT(*) FROM plan_sends WHERE plan_id = ?"
                                f" GROUP BY 1", (plan_id,)).fetchall())
    sent: dict[int, int] = {}
    if ledger:
        sent = dict(conn.execute(f"SELECT (sent_at / {size}) * {size}, COUNT(*) FROM exec_sends WHERE plan_id = ?"
                                 f" AND state = 'sent' AND sent_at IS NOT NULL GROUP BY 1", (plan_id,)).fetchall())
    seen = set(planned) | set(sent)
    # every bucket from the first to the last, so the time axis is linear (empty hours show as gaps);
    # a plan longer than MAX_POINTS * 4 days is cut there (the batches CSV has every batch)
    keys = list(range(min(seen), max(seen) + size, size))[:MAX_POINTS * 4]
    return [ThroughputPoint(at=iso_utc(k), planned=planned.get(k, 0), sent=sent.get(k, 0)) for k in keys], unit


def build_execution_report(ws, *, plan: str | None = None, rules: Rules | None = None,
                           clock: Clock = time.time) -> ExecutionReport:
    """Execution report of `plan` (id or file; default the latest plan) from plan and ledger."""
    conn = ws.db.conn
    p = resolve_plan(ws, plan)
    plan_id = p["plan_id"]
    try:
        run = latest_audit_run(ws)
    except ReportError:
        run = None
    rules, note = rules_for_run(run, rules)
    ledger = _has_table(conn, "exec_sends") and conn.execute(
        "SELECT 1 FROM exec_sends WHERE plan_id = ? LIMIT 1", (plan_id,)).fetchone() is not None
    ledger_note = None if ledger else ("No execution ledger for this plan in this workspace yet: the numbers are "
                                       "the plan's (planned sends and estimated cost); nothing has been sent.")
    body = p["body"]
    by_campaign = _ledger_counts(conn, plan_id, "campaign_key") if ledger else {}
    by_batch = _ledger_counts(conn, plan_id, "batch") if ledger else {}
    campaigns = []
    for c in body.get("campaigns", []):
        counts = by_campaign.get(c["key"]) or Counts(planned=c["sends"])
        cur, cpm = c["currency"], c["cost_per_message"]
        spent = counts.delivered * cpm if counts.delivered is not None else None
        accepted = counts.sent * cpm if counts.sent is not None else None
        campaigns.append(CampaignExec(
            campaign_key=c["key"], name=c["name"], page_id=c["page_id"], topic_title=c.get("topic_title"),
            currency=cur, counts=counts, cost_per_message_minor=cpm, estimated_cost_minor=c["estimated_cost"],
            estimated_cost=money(c["estimated_cost"], cur), budget_total_minor=c.get("budget_total"),
            budget_total=money(c.get("budget_total"), cur), spent_minor=spent, spent=money(spent, cur),
            accepted_cost_minor=accepted, accepted_cost=money(accepted, cur),
            unreachable_by_budget=c.get("unreachable_by_budget", 0)))
    batches = []
    for b in conn.execute("SELECT batch, day, not_before, sends FROM plan_batches WHERE plan_id = ? ORDER BY batch",
                          (plan_id,)):
        batches.append(BatchExec(batch=b[0], day=b[1], not_before=iso_utc(b[2]),
                                 counts=by_batch.get(b[0]) or Counts(planned=b[3])))
    if ledger:
        t = _ledger_counts(conn, plan_id, "plan_id").get(plan_id)
        totals = t or Counts(planned=0)
    else:
        totals = Counts(planned=body.get("sends", sum(c.counts.planned for c in campaigns)))
    errors: list[ErrorRow] = []
    if ledger:
        table = _meanings()
        for code, reason, n in conn.execute(
                "SELECT error_code, CASE WHEN error_code IS NULL THEN reason END, COUNT(*) FROM exec_sends"
                " WHERE plan_id = ? AND (error_code IS NOT NULL OR state IN ('failed', 'skipped'))"
                " GROUP BY 1, 2 ORDER BY 3 DESC", (plan_id,)):
            meaning, cls = _meaning_of(code, reason, table)
            errors.append(ErrorRow(code=str(code) if code is not None else f"reason:{reason or 'none'}",
                                   count=n, meaning=meaning, error_class=cls))
    failed_by_class: dict[str, int] = {}
    if ledger:
        for code, reason, n in conn.execute("SELECT error_code, reason, COUNT(*) FROM exec_sends"
                                            " WHERE plan_id = ? AND state = 'failed' GROUP BY 1, 2", (plan_id,)):
            cls = _meaning_of(code, reason, table)[1] or (reason or "").split(":", 1)[0] or "other"
            failed_by_class[cls] = failed_by_class.get(cls, 0) + n
    stopped = conn.execute("SELECT COUNT(*) FROM exec_sends WHERE plan_id = ? AND state = 'skipped'"
                           " AND reason LIKE 'campaign_stopped%'", (plan_id,)).fetchone()[0] if ledger else 0
    points, unit = _throughput(conn, plan_id, ledger)
    runs = _runs(conn, plan_id)
    excluded = body.get("excluded") or dict(conn.execute("SELECT reason, COUNT(*) FROM plan_excluded WHERE plan_id = ? GROUP BY reason"
                                 " ORDER BY 2 DESC", (plan_id,)).fetchall())
    return ExecutionReport(
        provenance=provenance(ws, run, rules, note, p, clock),
        plan_id=plan_id, plan_name=p["name"] or plan_id, plan_created_at=iso_utc(p["created_at"]),
        ledger=ledger, ledger_note=ledger_note, totals=totals, excluded=excluded,
        countdown=_countdown(conn, run, rules, p), runs=runs,
        campaigns=campaigns, batches=batches, batches_total=len(batches), errors=errors,
        throughput=points, throughput_bucket=unit, next_steps=_next_steps(plan_id, ledger, totals, failed_by_class, stopped),
        glossary=glossary("MM", "Ad account", "Short hash") + [
            Term(term="Unknown", meaning="A send whose outcome is not known (the process stopped while it was in "
                                         "flight); it is never re-sent unless you ask, so nobody gets it twice."),
            Term(term="Skipped", meaning="Not sent on purpose (e.g. the person opted out or is in a region MM "
                                         "does not serve); no cost."),
            Term(term="Delivered / read", meaning="Counted from Meta's delivery and read webhooks ingested with "
                                                  "migrator ingest receipts.")],
    )


# how a run ended, in both vocabularies of exec_runs.outcome (the newer one first)
OUTCOMES = {
    "finished": "finished: every send it could make was made",
    "interrupted": "interrupted (Ctrl-C or a signal); committed and resumable",
    "killed": "killed (the process died without finishing); resumable",
    "refused": "refused to start (e.g. a stale plan or a held lock); nothing sent",
    "done": "finished: every send it could make was made",
    "waiting": "stopped to wait (warm-up, send window or budget); run again to go on",
    "stopped": "stopped (a pause, a budget or a stop asked for); resumable",
    "fatal": "stopped by an error that needs fixing first",
    "running": "running, or killed without a trace (no end recorded)",
}


def _runs(conn, plan_id: str) -> list[RunRow]:
    """Every run of the plan (exec_runs), oldest first, with how it ended and whether it was resumed."""
    if not _has_table(conn, "exec_runs"):
        return []
    rows = conn.execute("SELECT id, mode, started_at, finished_at, outcome, summary FROM exec_runs"
                        " WHERE plan_id = ? ORDER BY started_at, id", (plan_id,)).fetchall()
    out = []
    last_real = max((i for i, r in enumerate(rows) if r[1] != "dry_run"), default=-1)
    for i, (rid, mode, started, finished, outcome, summary) in enumerate(rows):
        if outcome is None:     # older rows, or a process that died before recording its end
            outcome = "finished" if finished is not None else ("killed" if i < len(rows) - 1 else "running")
        sent = None
        try:
            sent = (json.loads(summary) or {}).get("sent") if summary else None
        except (ValueError, AttributeError):
            sent = None
        # a real run that did not finish, followed by another real run: that one resumed it
        resumed = mode != "dry_run" and outcome not in ("finished", "done", "refused") and i < last_real
        label = OUTCOMES.get(outcome, outcome.replace("_", " "))
        if resumed:
            label += "; resumed by a later run"
        out.append(RunRow(run_id=rid, mode=mode, started_at=iso_utc(started), finished_at=iso_utc(finished),
                          outcome=outcome, outcome_label=label, resumed=resumed,
                          sent=sent if isinstance(sent, int) else None))
    return out


def _countdown(conn, run, rules, plan, counts=None) -> Countdown | None:
    """The readiness countdown for this report's header (before RN's discontinuation only)."""
    if run is None:
        return None
    from datetime import date

    from migrator.report.readmodel import countdown, page_counts, value_per_subscriber

    if (rules.rn_discontinuation.value - date.fromisoformat(run["as_of"])).days <= 0:
        return None                     # on or after the date: nothing to count down to
    counts = counts if counts is not None else page_counts(conn, run["id"])
    names = dict(conn.execute("SELECT page_id, name FROM pages").fetchall())
    value, note = value_per_subscriber(conn, plan)
    return countdown(counts, names, date.fromisoformat(run["as_of"]), rules.rn_discontinuation.value, value, note)


def _next_steps(plan_id: str, ledger: bool, t: Counts, failed_by_class: dict[str, int] | None = None,
                stopped: int = 0) -> list[str]:
    run = f"migrator execute PLAN.json --execute   (PLAN.json = the saved file of plan {plan_id})"
    if not ledger:
        return [f"Dry run first: migrator execute PLAN.json   (PLAN.json = the saved file of plan {plan_id}); "
                "it spends nothing.",
                f"Then send: {run}."]
    steps = []
    remaining = t.planned - (t.sent or 0) - (t.skipped or 0) - (t.failed or 0) - (t.unknown or 0)
    if remaining > 0:
        steps.append(f"{plural(remaining, 'send')} {'is' if remaining == 1 else 'are'} still to go. Resume with: {run}. It picks up where it stopped "
                     "and never repeats a send.")
    if t.unknown:
        steps.append(f"{plural(t.unknown, 'send')} {'is' if t.unknown == 1 else 'are'} unknown. Settle them by ingesting Meta's webhooks: "
                     "migrator ingest receipts WEBHOOKS.jsonl; only then, if you accept a possible duplicate, "
                     "re-send the rest with --resend-unknown.")
    failed = dict(failed_by_class or {})
    gone = failed.pop("recipient_never", 0)
    if gone:
        steps.append(f"{plural(gone, 'subscriber')} cannot receive MM (opted out, invalid, expired or in a region MM "
                     "does not serve): nothing to fix here; they are marked in the inventory and the next "
                     "`migrator audit` shows them.")
    rest = sum(failed.values()) if failed_by_class is not None else (t.failed or 0)
    if rest:
        steps.append(f"{plural(rest, 'send')} failed: see the error codes below; fix the payload or account problem "
                     "named there before resuming.")
    if stopped:
        steps.append(f"{plural(stopped, 'send')} {'was' if stopped == 1 else 'were'} skipped because Meta stopped "
                     f"{'its campaign' if stopped == 1 else 'their campaigns'}: fix the cause named in the error codes "
                     "below, then run `migrator audit` and make a new plan for the subscribers still to move "
                     "(a stopped campaign's sends are not retried).")
    if not steps:
        steps.append("Nothing left to do for this plan: every send has an outcome.")
    return steps

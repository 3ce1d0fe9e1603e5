"""The readiness report model (for account managers): one verdict per page, in plain words.

Per page: ready / needs_action / blocked (from the audit), days to the date that matters
(RN stopping for its subscribers), who must act on what (partner, business, Meta), how many
subscriptions move, stay or are lost, and the plan's cost when a plan exists. One grouped
query over `audit_tokens` gives the per-page finding counts, so 10,000 pages build in one scan.
"""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

from migrator.audit import findings as F
from migrator.report.common import (Clock, ReportError, glossary, latest_audit_run, latest_plan, money,
                                    provenance, rules_for_run)
from migrator.report.models import (ActionItem, CostEstimate, PagePreflight, PageReadiness, PreflightCheck,
                                    ReadinessReport, Subscribers)
from migrator.rules import Rules

STATUS_ORDER = {"blocked": 0, "needs_action": 1, "ready": 2}

# page reasons (audit_pages.reasons) -> who acts, what to do. {n} = subscriptions concerned.
PAGE_ACTIONS: dict[str, tuple[str, str]] = {
    "PAGE_NO_AD_ACCOUNT": ("business", "Give the partner an ad account for this page: MM messages are paid "
                                       "through it."),
    "PAGE_BUSINESS_COUNTRY_UNSUPPORTED": ("business", "The business is registered in a country that cannot use "
                                                      "MM: subscribers who need MM can only be reached by a "
                                                      "business in an MM country."),
    "PAGE_BUSINESS_COUNTRY_UNKNOWN": ("partner", "Record the business's country for this page (pages file), "
                                                 "then re-run the audit."),
    "PAGE_NOT_INGESTED": ("partner", "Add this page to the pages file (name, business country, ad account, "
                                     "currency), then re-run the audit."),
    "PAGE_CONTENT_NEEDS_WORK": ("business", "Approve edited or replacement messages: some of this page's "
                                            "messages cannot be sent on MM as they are."),
    "AT_RISK_TOKENS": ("business", "{n} subscriptions stay on RN only until it stops for their region; "
                                   "without a business that can use MM they are lost then."),
    "BLOCKED_TOKENS": ("business", "{n} subscriptions can be reached by neither RN nor MM: the business "
                                   "cannot use MM for them."),
    "REVIEW_TOKENS": ("partner", "{n} subscriptions have an unknown or ambiguous country: add an explicit "
                                 "country (e.g. from the CRM) so they can be planned."),
}

# token findings -> who acts, what to do (only those that ask someone to do something)
TOKEN_ACTIONS: dict[str, tuple[str, str]] = {
    "RN_DISCONTINUATION_COUNTDOWN": ("partner", "Move {n} subscriptions to MM before RN stops for them on "
                                                "{cutoff}."),
    "RN_DISCONTINUED": ("partner", "Move {n} subscriptions to MM: RN stopped for them on {cutoff}."),
    "TOKEN_EXPIRED": ("business", "{n} subscriptions are dead (Meta refused them as expired): invite these "
                                  "people to opt in again."),
    "REGION_CONFLICT": ("partner", "{n} subscriptions: the partner's country data says MM may deliver but "
                                   "Meta refused; check the country data."),
    "RN_DAILY_FREQUENCY_LOST": ("business", "{n} daily subscriptions staying on RN can get at most one message "
                                            "per {rn_hours} hours: adjust the content calendar."),
    "MM_NOT_LAUNCHED": ("Meta", "Meta opens Marketing Messages on {mm_launch}; nothing can be sent on MM "
                                "before then."),
}
_VERDICT_AT_RISK_MASK = F.mask("RN_DISCONTINUATION_COUNTDOWN")


def _token_flag_counts(conn, run_id: int, page: str | None) -> dict[str, dict[str, int]]:
    """{page_id: {finding code (or 'AT_RISK'): subscriptions}} from one grouped scan."""
    sql = ("SELECT page_id, verdict, flags, COUNT(*) FROM audit_tokens WHERE run_id = ?"
           + (" AND page_id = ?" if page else "") + " GROUP BY page_id, verdict, flags")
    out: dict[str, dict[str, int]] = {}
    wanted = [f for f in F.of_scope(F.TOKEN) if f.code in TOKEN_ACTIONS]
    for pid, verdict, flags, n in conn.execute(sql, (run_id, page) if page else (run_id,)):
        d = out.setdefault(pid or "", {})
        for f in wanted:
            if flags & f.mask:
                # countdown on a token that stays on RN is "at risk", not "move before"
                if f.code == "RN_DISCONTINUATION_COUNTDOWN" and verdict != "migrate":
                    continue
                d[f.code] = d.get(f.code, 0) + n
        if verdict == "stay_on_rn" and flags & _VERDICT_AT_RISK_MASK:
            d["AT_RISK"] = d.get("AT_RISK", 0) + n
    return out


def _costs(conn, plan: dict[str, Any] | None) -> dict[str, list[CostEstimate]]:
    if plan is None:
        return {}
    body = conn.execute("SELECT body FROM plans WHERE plan_id = ?", (plan["plan_id"],)).fetchone()
    campaigns = json.loads(body[0]).get("campaigns", []) if body else []
    acc: dict[tuple[str, str], dict[str, int | None]] = {}
    for c in campaigns:
        a = acc.setdefault((c["page_id"], c["currency"]),
                           {"sends": 0, "cost": 0, "budget": 0, "unreachable": 0})
        a["sends"] += c["sends"]
        a["cost"] += c["estimated_cost"]
        a["unreachable"] += c.get("unreachable_by_budget", 0)
        b = c.get("budget_total")
        a["budget"] = None if (b is None or a["budget"] is None) else a["budget"] + b
    out: dict[str, list[CostEstimate]] = {}
    for (pid, cur), a in sorted(acc.items()):
        out.setdefault(pid, []).append(CostEstimate(
            plan_id=plan["plan_id"], currency=cur, sends=a["sends"], estimated_cost_minor=a["cost"],
            estimated_cost=money(a["cost"], cur), budget_total_minor=a["budget"],
            budget_total=money(a["budget"], cur), unreachable_by_budget=a["unreachable"]))
    return out


def _preflights(conn) -> dict[str, PagePreflight]:
    """Each page's latest preflight (migrator/preflight), with what to do for every failed check."""
    from datetime import datetime, timezone

    from migrator.preflight import GUIDES, latest_page_states

    out = {}
    for pid, s in latest_page_states(conn).items():
        out[pid] = PagePreflight(
            state=s["state"],
            checked_at=datetime.fromtimestamp(s["checked_at"], timezone.utc).strftime("%Y-%m-%d %H:%M"),
            failed=[PreflightCheck(check=c, title=GUIDES[c].title, who=GUIDES[c].who, what=GUIDES[c].action)
                    for c in s["failed"] if c in GUIDES],
            unknown=[GUIDES[c].title for c in s["unknown"] if c in GUIDES])
    return out


def _deadline(row: dict[str, Any], at_risk: int, cutoff: date, as_of: date) -> tuple[str | None, str | None, int | None]:
    """RN's discontinuation matters to a page with subscribers who cannot simply stay on RN."""
    depends = row["migrate"] + row["blocked"] + row["review"] + at_risk
    if depends == 0:
        return None, None, None
    days = (cutoff - as_of).days
    if days > 0:
        label = f"RN stops for {depends:,} of these subscriptions on {cutoff.isoformat()}: {days} days left"
    elif days == 0:
        label = f"RN stops for {depends:,} of these subscriptions today ({cutoff.isoformat()})"
    else:
        label = f"RN stopped for {depends:,} of these subscriptions on {cutoff.isoformat()}, {-days} days ago"
    return cutoff.isoformat(), label, days


def build_readiness_report(ws, *, page: str | None = None, rules: Rules | None = None,
                           clock: Clock = time.time) -> ReadinessReport:
    """Readiness of every page (or of `page` alone) from the latest audit and plan."""
    conn = ws.db.conn
    run = latest_audit_run(conn)
    rules, note = rules_for_run(run, rules)
    plan = latest_plan(conn)
    as_of = date.fromisoformat(run["as_of"])
    cutoff = rules.rn_discontinuation.value
    ctx = {"cutoff": cutoff.isoformat(), "rn_hours": rules.rn_cadence_hours.value,
           "mm_launch": rules.mm_launch.value.isoformat()}
    q = ("SELECT a.page_id, p.name, a.business_country, a.status, a.reasons, a.tokens, a.migrate, a.stay_on_rn,"
         " a.blocked, a.opted_out, a.review FROM audit_pages a LEFT JOIN pages p ON p.page_id = a.page_id"
         " WHERE a.run_id = ?" + (" AND a.page_id = ?" if page else ""))
    rows = conn.execute(q, (run["id"], page) if page else (run["id"],)).fetchall()
    if page and not rows:
        raise ReportError(f"page {page!r} is not in the latest audit",
                          hint="check the id with `migrator audit --json` or the pages file; re-run `migrator audit` "
                               "after ingesting it")
    flags = _token_flag_counts(conn, run["id"], page)
    costs = _costs(conn, plan)
    preflights = _preflights(conn)
    pages = []
    for pid, name, bc, status, reasons, tokens, mig, stay, blk, opt, rev in rows:
        counts = flags.get(pid, {})
        at_risk = counts.get("AT_RISK", 0)
        row = {"migrate": mig, "blocked": blk, "review": rev}
        deadline, label, days = _deadline(row, at_risk, cutoff, as_of)
        reasons = json.loads(reasons)
        n_for = {"AT_RISK_TOKENS": at_risk, "BLOCKED_TOKENS": blk, "REVIEW_TOKENS": rev}
        actions = []
        for code in reasons:
            if code in PAGE_ACTIONS:
                who, what = PAGE_ACTIONS[code]
                actions.append(ActionItem(who=who, code=code, what=what.format(n=f"{n_for.get(code, 0):,}", **ctx),
                                          count=n_for.get(code)))
        for code, (who, what) in TOKEN_ACTIONS.items():
            if counts.get(code):
                actions.append(ActionItem(who=who, code=code, what=what.format(n=f"{counts[code]:,}", **ctx),
                                          count=counts[code]))
        pages.append(PageReadiness(
            page_id=pid, name=name, business_country=bc, status=status, reasons=reasons,
            deadline=deadline, deadline_label=label, days_to_deadline=days,
            subscribers=Subscribers(move=mig, stay=stay, at_risk=at_risk, lost=blk, opted_out=opt,
                                    undecided=rev, total=tokens),
            actions=actions, cost=costs.get(pid, []), preflight=preflights.get(pid)))
    pages.sort(key=lambda p: (STATUS_ORDER[p.status], p.days_to_deadline if p.days_to_deadline is not None
                              else 10 ** 6, -p.subscribers.total, p.page_id))
    total = Subscribers(**{k: sum(getattr(p.subscribers, k) for p in pages) for k in Subscribers.model_fields})
    statuses = {s: sum(p.status == s for p in pages) for s in STATUS_ORDER}
    any_deadline = any(p.deadline for p in pages)
    return ReadinessReport(
        provenance=provenance(ws, run, rules, note, plan, clock),
        page_filter=page, statuses=statuses, subscribers=total,
        deadline=cutoff.isoformat() if any_deadline else None,
        days_to_deadline=(cutoff - as_of).days if any_deadline else None,
        pages=pages, pages_total=len(pages),
        glossary=glossary(),
    )

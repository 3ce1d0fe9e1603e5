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

from migrator.report.approvals import approvals
from migrator.report.common import (Clock, ReportError, glossary, latest_audit_run, latest_plan, money,
                                    provenance, rules_for_run)
from migrator.report.models import (ActionItem, CostEstimate, Cutover, PagePreflight, PageReadiness,
                                    PreflightCheck, ReadinessReport, Subscribers)
from migrator.report.readmodel import (PageCounts, _has_rows, countdown, cutover, is_done, page_counts, plan_spec, sent_messages,
                                       value_per_subscriber)
from migrator.rules import Rules
from migrator.words import plural

STATUS_ORDER = {"blocked": 0, "needs_action": 1, "ready": 2, "done": 3}

# page reasons (audit_pages.reasons) -> who acts, what to do, and the row figure it counts
# ({n} = that figure in words; `_figure` says which one, so an action never has a number of its own)
PAGE_ACTIONS: dict[str, tuple[str, str]] = {
    "PAGE_NO_AD_ACCOUNT": ("business", "Give the partner an ad account for this page: MM messages are paid "
                                       "through it, and {n} cannot move to MM without one."),
    "PAGE_BUSINESS_COUNTRY_UNSUPPORTED": ("business", "{n} {need} MM {rn_when}, but the business is registered "
                                                      "in {country}, where MM is not available: only a business "
                                                      "registered in an MM country could reach them."),
    "PAGE_BUSINESS_COUNTRY_UNKNOWN": ("partner", "Record the business's country for this page (pages file), "
                                                 "then re-run the audit: {n} cannot be judged without it."),
    "PAGE_NOT_INGESTED": ("partner", "Add this page to the pages file (name, business country, ad account, "
                                     "currency), then re-run the audit: its {n} cannot be judged until then."),
    "PAGE_CONTENT_NEEDS_WORK": ("business", "Approve or replace {messages} {listed}: as they are, they cannot "
                                            "be sent on MM."),
    "AT_RISK_TOKENS": ("business", "{n} {stay} on RN only until it stops for their region; without a business "
                                   "that can use MM they are lost then."),
    "BLOCKED_TOKENS": ("business", "{n} can be reached by neither RN nor MM {rn_when}: the business cannot use "
                                   "MM for them."),
    "REVIEW_TOKENS": ("partner", "{n} {have} an unknown or ambiguous country: add an explicit country (e.g. from "
                                 "the CRM) so the audit can tell what they need."),
}
# which figure of the row each action counts (Subscribers keys; "approvals_total" is the row's own)
_FIGURE = {"PAGE_NO_AD_ACCOUNT": "move", "PAGE_BUSINESS_COUNTRY_UNSUPPORTED": "lost",
           "PAGE_BUSINESS_COUNTRY_UNKNOWN": "undecided", "PAGE_NOT_INGESTED": "total",
           "PAGE_CONTENT_NEEDS_WORK": "approvals_total", "AT_RISK_TOKENS": "at_risk", "BLOCKED_TOKENS": "lost",
           "REVIEW_TOKENS": "needs_country", "TOKEN_EXPIRED": "expired", "REGION_CONFLICT": "region_conflict",
           "RN_DAILY_FREQUENCY_LOST": "daily_limited", "MM_NOT_LAUNCHED": "move"}

# token findings -> who acts, what to do, and the verdicts whose (not yet moved) subscriptions count.
# Moving itself is not here: its count is the page's own `move` figure (see _move_action), so the
# action and the table can never disagree.
TOKEN_ACTIONS: dict[str, tuple[str, str, set[str] | None]] = {
    "TOKEN_EXPIRED": ("business", "{are} dead (Meta refused them as expired): invite these people to opt in "
                                  "again.", None),
    "REGION_CONFLICT": ("partner", "{have} partner country data saying MM may deliver, but Meta refused: check "
                                   "the country data.", {"migrate", "review"}),
    "RN_DAILY_FREQUENCY_LOST": ("business", "{were} daily and, staying on RN, can get at most one message per "
                                            "{rn_hours} hours: adjust the content calendar.", {"stay_on_rn"}),
}
_MM_NOT_LAUNCHED = "MM_NOT_LAUNCHED"
_META_ACTION = "Meta opens Marketing Messages on {mm_launch}; nothing can be sent on MM before then, so {n} wait."


def _subs(n: int) -> str:
    return plural(n, "subscription")


def _verbs(n: int) -> dict[str, str]:
    """Verbs agreeing with a count of subscriptions ("1 subscription has", "2 subscriptions have")."""
    one = {"are": "is", "were": "was", "have": "has", "stay": "stays", "need": "needs"}
    return one if n == 1 else {k: k for k in one}


def _move_action(c: PageCounts, cut: Cutover | None, cutoff: date, as_of: date) -> ActionItem | None:
    """'Move N subscriptions to MM', N being the page's `move` figure (not yet moved)."""
    if c.move == 0:
        return None
    n = _subs(c.move)
    held = cut.held_by_another_plan if cut is not None else 0
    # sends the plan skips (people another plan reached, or holds with an unsettled send) are not "to go"
    waiting = cut.to_send - cut.already_reached - held if cut is not None else 0
    on_hold = (f"; {plural(held, 'send')} held by {'plan ' + ', '.join(cut.held_by_plans) if cut.held_by_plans else 'another plan'}"
               "'s unsettled sends, which receipts or `--resend-unknown` on that plan settle") if held else ""
    if c.held == c.move:
        return ActionItem(who="partner", code="RN_DISCONTINUATION_COUNTDOWN" if (cutoff - as_of).days > 0
                          else "RN_DISCONTINUED", count=c.move, counts="move",
                          what=(f"Move {n} to MM: another plan's send to them is unsettled (in flight or unknown), "
                                "so no plan sends to them now: receipts or `--resend-unknown` on that plan settle it."))
    if cut is not None and cut.state in ("in_progress", "stopped", "done") and waiting == 0 and not held:
        what = (f"Move {n} to MM: they were not among plan {cut.plan_id}'s accepted sends (left out by the plan, "
                "over budget, or refused); plan them, or see why in the plan's exclusions.")
    elif cut is not None and cut.state == "in_progress":
        what = f"Move {n} to MM: plan {cut.plan_id} is under way ({plural(waiting, 'send')} to go{on_hold})."
    elif (cutoff - as_of).days > 0:
        what = f"Move {n} to MM before RN stops for them on {cutoff.isoformat()}."
    else:
        what = f"Move {n} to MM: RN stopped for them on {cutoff.isoformat()}."
    if c.held:      # some of them
        # the latest plan skips them (sent_by_another_plan): another plan's send to them is unsettled
        what += (f" {plural(c.held, 'subscription')} of these {'waits' if c.held == 1 else 'wait'} on another plan's"
                 " unsettled send (in flight or unknown), which this plan skips: receipts or `--resend-unknown` on"
                 " that plan settle it.")
    code = "RN_DISCONTINUATION_COUNTDOWN" if (cutoff - as_of).days > 0 else "RN_DISCONTINUED"
    return ActionItem(who="partner", code=code, what=what, count=c.move, counts="move")


def _costs(conn, plan: dict[str, Any] | None) -> dict[str, list[CostEstimate]]:
    """Per page and currency: the plan's estimate and budget, and once it ran, what Meta accepted
    and delivered (sends x the campaign's cost per message), so the cost line is true after a cutover."""
    if plan is None:
        return {}
    campaigns = plan["body"].get("campaigns", [])
    ledger: dict[str, tuple[int, int]] = {}
    if _has_rows(conn, "exec_sends"):
        ledger = {k: (sent or 0, dl or 0) for k, sent, dl in conn.execute(
            "SELECT campaign_key, SUM(state = 'sent'), SUM(delivered_at IS NOT NULL) FROM exec_sends"
            " WHERE plan_id = ? GROUP BY campaign_key", (plan["plan_id"],))}
    acc: dict[tuple[str, str], dict[str, int | None]] = {}
    for c in campaigns:
        a = acc.setdefault((c["page_id"], c["currency"]),
                           {"sends": 0, "cost": 0, "budget": 0, "unreachable": 0, "sent": None, "accepted": None,
                            "delivered": None, "delivered_cost": None})
        a["sends"] += c["sends"]
        a["cost"] += c["estimated_cost"]
        if ledger:
            sent, dl = ledger.get(c["key"], (0, 0))
            cpm = c.get("cost_per_message", 0)
            a["sent"] = (a["sent"] or 0) + sent
            a["accepted"] = (a["accepted"] or 0) + sent * cpm
            a["delivered"] = (a["delivered"] or 0) + dl
            a["delivered_cost"] = (a["delivered_cost"] or 0) + dl * cpm
        a["unreachable"] += c.get("unreachable_by_budget", 0)
        b = c.get("budget_total")
        a["budget"] = None if (b is None or a["budget"] is None) else a["budget"] + b
    out: dict[str, list[CostEstimate]] = {}
    for (pid, cur), a in sorted(acc.items()):
        out.setdefault(pid, []).append(CostEstimate(
            plan_id=plan["plan_id"], currency=cur, sends=a["sends"], estimated_cost_minor=a["cost"],
            estimated_cost=money(a["cost"], cur), budget_total_minor=a["budget"],
            budget_total=money(a["budget"], cur), unreachable_by_budget=a["unreachable"],
            sent=a["sent"], accepted_cost_minor=a["accepted"], accepted_cost=money(a["accepted"], cur),
            delivered=a["delivered"], delivered_cost_minor=a["delivered_cost"],
            delivered_cost=money(a["delivered_cost"], cur)))
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
    # RN stops for every subscriber outside the exempt geos, the moved ones too: the figure is how
    # many of the page's subscriptions are neither on MM nor sure to keep RN ("of these" takes the
    # plural, even for 1)
    these = f"{depends:,} of these subscriptions {'is' if depends == 1 else 'are'} neither on MM nor sure to keep RN"
    if days > 0:
        label = f"RN stops on {cutoff.isoformat()}, {plural(days, 'day')} left: {these}"
    elif days == 0:
        label = f"RN stops today ({cutoff.isoformat()}): {these}"
    else:
        label = f"RN stopped on {cutoff.isoformat()}, {plural(-days, 'day')} ago: {these}"
    return cutoff.isoformat(), label, days


def build_readiness_report(ws, *, page: str | None = None, rules: Rules | None = None,
                           clock: Clock = time.time) -> ReadinessReport:
    """Readiness of every page (or of `page` alone) from the latest audit, plan and send ledger."""
    conn = ws.db.conn
    run = latest_audit_run(ws)
    rules, note = rules_for_run(run, rules)
    plan = latest_plan(ws)
    as_of = date.fromisoformat(run["as_of"])
    cutoff = rules.rn_discontinuation.value
    ctx = {"cutoff": cutoff.isoformat(), "rn_hours": rules.rn_cadence_hours.value,
           "mm_launch": rules.mm_launch.value.isoformat(),
           "rn_when": (f"once RN stops for them on {cutoff.isoformat()}" if (cutoff - as_of).days > 0
                       else f"now that RN has stopped for them ({cutoff.isoformat()})")}
    q = ("SELECT a.page_id, p.name, a.business_country, a.status, a.reasons FROM audit_pages a"
         " LEFT JOIN pages p ON p.page_id = a.page_id WHERE a.run_id = ?" + (" AND a.page_id = ?" if page else ""))
    rows = conn.execute(q, (run["id"], page) if page else (run["id"],)).fetchall()
    if page and not rows:
        raise ReportError(f"page {page!r} is not in the latest audit",
                          hint="check the id with `migrator audit --json` or the pages file; re-run `migrator audit` "
                               "after ingesting it")
    wanted: dict[str, set[str] | None] = {code: verdicts for code, (_, _, verdicts) in TOKEN_ACTIONS.items()}
    wanted[_MM_NOT_LAUNCHED] = None
    counts = page_counts(conn, run["id"], page, wanted, plan_id=plan["plan_id"] if plan else None)
    cuts = cutover(conn, plan, page)
    costs = _costs(conn, plan)
    preflights = _preflights(conn)
    spec = plan_spec(conn, plan)
    planned = {c["page_id"] for c in plan["body"].get("campaigns", [])} if plan else None
    to_approve = approvals(conn, run["id"], page, spec, planned=planned, sent=sent_messages(conn, plan))
    value, value_note = value_per_subscriber(conn, plan, spec)
    paid = _accounts_in_plan(plan, spec)
    from migrator.report.crm import UNCLEAR_COUNTRY

    # undecided because the recipient's country is unclear (a page without a business country
    # leaves the rest undecided: a CRM country would not help them)
    unclear = dict(conn.execute("SELECT a.page_id, COUNT(*) FROM audit_tokens a WHERE a.run_id = ?"
                                f" AND a.verdict = 'review' AND {UNCLEAR_COUNTRY}" + (" AND a.page_id = ?" if page else "")
                                + " GROUP BY 1", (run["id"], page) if page else (run["id"],)).fetchall())
    pages = []
    for pid, name, bc, audit_status, reasons in rows:
        c = counts.get(pid) or PageCounts()
        cut = cuts.get(pid)
        reasons = json.loads(reasons)
        deadline, label, days = _deadline({"migrate": c.move, "blocked": c.lost, "review": c.undecided},
                                          c.at_risk, cutoff, as_of)
        subs = _subscribers(c).model_copy(update={"needs_country": unclear.get(pid, 0)})
        # done: the plan's sends are through AND nobody is left to move (a budget or a plan that
        # left people out keeps the page's own status, with its "Move N" action)
        status = "done" if is_done(cut, c) else audit_status
        msgs, msgs_total = to_approve.get(pid, ([], 0))
        note = None
        if msgs_total and audit_status == "blocked":
            # no MM message can ever be sent for this page: nothing to approve
            msgs, msgs_total = [], 0
            note = ("No message needs approving: " + (f"a business registered in {bc} cannot use MM, so no MM "
                                                      "message can be sent for this page." if bc and
                                                      "PAGE_BUSINESS_COUNTRY_UNSUPPORTED" in reasons else
                                                      "no MM message can be sent for this page."))
        elif msgs_total and status == "done":
            # everyone the plan was to move has moved: what it sent is out, nothing is left to approve
            msgs, msgs_total = [], 0
            note = "No message needs approving: every subscription to move has moved, and the plan's messages are sent."
        elif not msgs_total and "PAGE_CONTENT_NEEDS_WORK" in reasons:
            note = "No message needs approving: the replacement texts the plan sends for this page are already out."
        row = {**subs.model_dump(), "approvals_total": msgs_total}
        actions = [a for a in [_move_action(c, cut, cutoff, as_of)] if a]
        for code in reasons:
            if code not in PAGE_ACTIONS:
                continue
            if code == "PAGE_NO_AD_ACCOUNT" and pid in paid:
                continue            # the plan spec supplied one (and the plan pays through it)
            if code == "BLOCKED_TOKENS" and "PAGE_BUSINESS_COUNTRY_UNSUPPORTED" in reasons:
                continue            # the same subscriptions, said once (with the reason)
            who, what = PAGE_ACTIONS[code]
            fig = _FIGURE[code]
            n = row[fig]
            if not n:
                continue            # nothing left to act on (e.g. they moved since the audit)
            if fig == "approvals_total":
                listed = "listed below" if len(msgs) == n else f"(the {len(msgs):,} most used are listed below)"
                actions.append(ActionItem(who=who, code=code, count=n, counts=fig, unit="messages",
                                          what=what.format(messages=plural(n, "message"), listed=listed)))
                continue
            actions.append(ActionItem(who=who, code=code, count=n, counts=fig,
                                      what=what.format(n=_subs(n), country=bc or "an unknown country",
                                                       **_verbs(n), **ctx)))
        for code, (who, what, _) in TOKEN_ACTIONS.items():
            n = row[_FIGURE[code]]
            if n:
                actions.append(ActionItem(who=who, code=code, what=f"{_subs(n)} {what.format(**_verbs(n), **ctx)}",
                                          count=n, counts=_FIGURE[code]))
        if c.flags.get(_MM_NOT_LAUNCHED) and subs.move:
            actions.append(ActionItem(who="Meta", code=_MM_NOT_LAUNCHED, count=subs.move, counts="move",
                                      what=_META_ACTION.format(n=_subs(subs.move), **ctx)))
        pages.append(PageReadiness(
            page_id=pid, name=name, business_country=bc, status=status, audit_status=audit_status,
            reasons=reasons, deadline=deadline, deadline_label=label, days_to_deadline=days,
            subscribers=subs, actions=actions, approvals=msgs, approvals_total=msgs_total, approvals_note=note,
            cost=costs.get(pid, []), cutover=cut, preflight=preflights.get(pid)))
    cd = countdown({p.page_id: counts.get(p.page_id) or PageCounts() for p in pages},
                   {p.page_id: p.name for p in pages}, as_of, cutoff, value, value_note)
    if cd is not None:
        losses = {x.page_id: x for x in cd.pages}
        pages = [p.model_copy(update={"loss": losses.get(p.page_id)}) for p in pages]
    pages.sort(key=lambda p: (STATUS_ORDER[p.status], p.days_to_deadline if p.days_to_deadline is not None
                              else 10 ** 6, -p.subscribers.total, p.page_id))
    total = Subscribers(**{k: sum(getattr(p.subscribers, k) for p in pages) for k in Subscribers.model_fields})
    statuses = {s: sum(p.status == s for p in pages) for s in STATUS_ORDER}
    any_deadline = any(p.deadline for p in pages)
    return ReadinessReport(
        provenance=provenance(ws, run, rules, note, plan, clock),
        countdown=cd, page_filter=page, statuses=statuses, subscribers=total,
        deadline=cutoff.isoformat() if any_deadline else None,
        days_to_deadline=(cutoff - as_of).days if any_deadline else None,
        pages=pages, pages_total=len(pages), has_plan=plan is not None,
        glossary=glossary(),
    )


def _subscribers(c: PageCounts) -> Subscribers:
    return Subscribers(move=c.move, moved=c.moved, delivered=c.delivered, read=c.read, stay=c.stay,
                       at_risk=c.at_risk, lost=c.lost, opted_out=c.opted_out, undecided=c.undecided, total=c.total,
                       daily_limited=c.flags.get("RN_DAILY_FREQUENCY_LOST", 0), expired=c.flags.get("TOKEN_EXPIRED", 0),
                       region_conflict=c.flags.get("REGION_CONFLICT", 0), held_by_another_plan=c.held)


def _accounts_in_plan(plan: dict[str, Any] | None, spec: Any) -> set[str]:
    """Pages the latest plan pays through an ad account (its campaigns, or its spec's [pages] entries):
    the audit's PAGE_NO_AD_ACCOUNT is about the pages file, and is stale for these."""
    if plan is None:
        return set()
    out = {c["page_id"] for c in plan["body"].get("campaigns", []) if c.get("ad_account_id")}
    if spec is not None:
        out |= {pid for pid, p in spec.pages.items() if getattr(p, "ad_account", None)}
    return out

"""The read model behind every report: the audit's verdicts joined with the send ledger.

The audit judges subscriptions (`audit_tokens.verdict`: migrate, stay_on_rn, blocked,
opted_out, review); those names are a contract and stay. What happened since is the
executor's: a `migrate` subscription whose person (page + PSID) got an MM send that Meta
accepted (`exec_sends.state = 'sent'`, or any delivery/read receipt, however the row's state
reads) has *moved*; `delivered_at` / `read_at` say whether the message arrived and was read.
A page whose planned sends all have an outcome that needs nothing more (sent, skipped, or
refused for good by the recipient) is *done*.

Everything is one grouped scan per question, so a 10M-token estate never leaves SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from migrator.audit.findings import mask
from migrator.money import format_money
from migrator.report.models import Countdown, Cutover, Money, PageLoss

AT_RISK_MASK = mask("RN_DISCONTINUATION_COUNTDOWN")


@dataclass
class PageCounts:
    """One page's subscriptions from the audit and the ledger (every figure the report shows)."""

    move: int = 0          # migrate, not moved
    moved: int = 0
    delivered: int = 0
    read: int = 0
    stay: int = 0
    at_risk: int = 0       # of stay: only until RN stops
    lost: int = 0          # blocked
    opted_out: int = 0
    undecided: int = 0     # review
    held: int = 0          # of move: another plan's unsettled send (in flight / unknown) holds the person
    flags: dict[str, int] = field(default_factory=dict)   # finding code -> subscriptions (see token_flags)

    @property
    def total(self) -> int:
        return self.move + self.moved + self.stay + self.lost + self.opted_out + self.undecided

    @property
    def lost_on_deadline(self) -> int:
        """Reachable on RN today, unreachable after it stops, if nothing is done."""
        return self.move + self.at_risk + self.lost


def _has_rows(conn, table: str) -> bool:
    try:
        return conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None
    except Exception:   # the table does not exist in this workspace (older schema)
        return False


def page_counts(conn, run_id: int, page: str | None = None,
                flag_codes: dict[str, set[str] | None] | None = None,
                plan_id: str | None = None) -> dict[str, PageCounts]:
    """{page_id: PageCounts} for the audit run, with moved/delivered/read from the send ledger.

    `flag_codes`: finding code -> the verdicts whose subscriptions count for it (None: any);
    counted on subscriptions that have not moved. `plan_id` (the latest plan): count `held`, the
    subscriptions still to move whose person a plan other than it holds with an unsettled send.
    """
    flag_codes = flag_codes or {}
    masks = {code: mask(code) for code in flag_codes}
    where = " WHERE a.run_id = ?" + (" AND a.page_id = ?" if page else "")
    args: tuple = (run_id, page) if page else (run_id,)
    out: dict[str, PageCounts] = {}
    # 1. the audit alone: one grouped scan of audit_tokens (as fast as before the ledger existed)
    for pid, verdict, flags, n in conn.execute(
            "SELECT a.page_id, a.verdict, a.flags, COUNT(*) FROM audit_tokens a" + where + " GROUP BY 1, 2, 3", args):
        c = out.setdefault(pid or "", PageCounts())
        if verdict == "migrate":
            c.move += n
        elif verdict == "stay_on_rn":
            c.stay += n
            if flags & AT_RISK_MASK:
                c.at_risk += n
        elif verdict == "blocked":
            c.lost += n
        elif verdict == "opted_out":
            c.opted_out += n
        else:
            c.undecided += n
        for code, verdicts in flag_codes.items():
            if flags & masks[code] and (verdicts is None or verdict in verdicts):
                c.flags[code] = c.flags.get(code, 0) + n
    if not _has_rows(conn, "exec_sends"):
        return out
    # 2. the ledger: from each person Meta accepted a send for, to their migrate subscriptions
    #    (through the tokens_person index), so the work follows the ledger's size, not the estate's
    reached = ("SELECT t.page_id AS page_id, t.psid AS psid, CASE WHEN t.psid IS NULL THEN t.id END AS tid,"
               " MAX(e.delivered_at IS NOT NULL OR e.read_at IS NOT NULL) AS d, MAX(e.read_at IS NOT NULL) AS r"
               " FROM exec_sends e JOIN tokens t ON t.id = e.token_id"
               " WHERE e.state = 'sent' OR e.delivered_at IS NOT NULL OR e.read_at IS NOT NULL"
               " GROUP BY 1, 2, 3")
    pf = " AND a.page_id = ?" if page else ""
    sql = (f"WITH reached AS ({reached}) SELECT a.page_id, a.flags, r.d, r.r, COUNT(*) FROM reached r"
           " JOIN tokens t ON t.page_id = r.page_id AND t.psid = r.psid"
           f" JOIN audit_tokens a ON a.token_id = t.id WHERE r.psid IS NOT NULL AND a.run_id = ? AND a.verdict = 'migrate'{pf}"
           " GROUP BY 1, 2, 3, 4"
           " UNION ALL SELECT a.page_id, a.flags, r.d, r.r, COUNT(*) FROM reached r"
           f" JOIN audit_tokens a ON a.token_id = r.tid WHERE r.tid IS NOT NULL AND a.run_id = ? AND a.verdict = 'migrate'{pf}"
           " GROUP BY 1, 2, 3, 4")
    for pid, flags, delivered, read, n in conn.execute(sql, args + args):
        c = out.setdefault(pid or "", PageCounts())
        c.move -= n
        c.moved += n
        c.delivered += n if delivered else 0
        c.read += n if read else 0
        for code, verdicts in flag_codes.items():     # flags count the subscriptions not moved yet
            if flags & masks[code] and (verdicts is None or "migrate" in verdicts):
                c.flags[code] -= n
    if plan_id is not None:
        # 3. not moved, but another plan's send to the person is in flight or unknown (no receipt):
        #    the latest plan's run skips them (sent_by_another_plan), that plan's recovery settles them
        unsettled = ("SELECT t.page_id, t.psid, CASE WHEN t.psid IS NULL THEN t.id END FROM exec_sends e"
                     " JOIN tokens t ON t.id = e.token_id WHERE e.plan_id != ? AND e.state IN ('in_flight', 'unknown')"
                     f" EXCEPT SELECT page_id, psid, tid FROM ({reached})")
        sql = (f"WITH held(page_id, psid, tid) AS ({unsettled}) SELECT a.page_id, COUNT(*) FROM held h"
               " JOIN tokens t ON t.page_id = h.page_id AND t.psid = h.psid JOIN audit_tokens a ON a.token_id = t.id"
               f" WHERE h.psid IS NOT NULL AND a.run_id = ? AND a.verdict = 'migrate'{pf} GROUP BY 1"
               " UNION ALL SELECT a.page_id, COUNT(*) FROM held h JOIN audit_tokens a ON a.token_id = h.tid"
               f" WHERE h.tid IS NOT NULL AND a.run_id = ? AND a.verdict = 'migrate'{pf} GROUP BY 1")
        for pid, n in conn.execute(sql, (plan_id,) + args + args):
            out.setdefault(pid or "", PageCounts()).held += n
    for c in out.values():
        c.flags = {k: v for k, v in c.flags.items() if v}
    return out


def cutover(conn, plan: dict[str, Any] | None, page: str | None = None) -> dict[str, Cutover]:
    """{page_id: Cutover} for the latest plan: its sends per page, as the ledger has them."""
    if plan is None:
        return {}
    body = plan["body"]
    page_of = {c["key"]: c["page_id"] for c in body.get("campaigns", [])}
    acc: dict[str, dict[str, int]] = {}
    ledger = conn.execute("SELECT 1 FROM exec_sends WHERE plan_id = ? LIMIT 1",
                          (plan["plan_id"],)).fetchone() is not None if _has_rows(conn, "exec_sends") else False
    if ledger:
        rows = conn.execute(
            "SELECT campaign_key, COUNT(*), SUM(state = 'sent'), SUM(delivered_at IS NOT NULL),"
            " SUM(read_at IS NOT NULL), SUM(state = 'failed'), SUM(state = 'failed' AND mm_state IS NULL),"
            " SUM(state = 'skipped'), SUM(state = 'skipped' AND reason LIKE 'campaign_stopped%'),"
            " SUM(state = 'unknown'), SUM(state IN ('planned', 'in_flight'))"
            " FROM exec_sends WHERE plan_id = ? GROUP BY campaign_key", (plan["plan_id"],))
    else:
        rows = conn.execute("SELECT campaign_key, COUNT(*), 0, 0, 0, 0, 0, 0, 0, 0, COUNT(*) FROM plan_sends"
                            " WHERE plan_id = ? GROUP BY campaign_key", (plan["plan_id"],))
    # skipped_stopped: sends skipped because Meta stopped their campaign (campaign_stopped:<code>),
    # which the partner can fix and send again; other skips are the recipient's own (opted out...)
    keys = ("planned", "sent", "delivered", "read", "failed", "failed_fixable", "skipped", "skipped_stopped",
            "unknown", "to_send", "already")
    for key, *vals in rows:
        pid = page_of.get(key)
        if pid is None or (page and pid != page):
            continue
        a = acc.setdefault(pid, dict.fromkeys(keys, 0))
        for k, v in zip(keys, vals):
            a[k] += v or 0
    # a plan made again after a cutover plans the people an earlier plan already reached: those
    # sends are still "to send" in this plan, but nobody waits for them (the executor skips a
    # repeat as sent_by_another_plan): they neither keep a page from being done nor mean "not started"
    # a send whose person another plan's *unsettled* send (in flight, or unknown) holds is skipped
    # too (the executor's rule owns the person by that plan): neither reached nor waiting, it waits
    # on that plan's recovery (receipts, `--resend-unknown`), so it is counted apart (`held`)
    holders: dict[str, set[str]] = {}
    for key, reached, holder, n in _already_reached(conn, plan["plan_id"], ledger):
        pid = page_of.get(key)
        if pid not in acc:
            continue
        if reached:
            acc[pid]["already"] += n
        else:
            acc[pid]["held"] = acc[pid].get("held", 0) + n
            holders.setdefault(pid, set()).add(holder)
    out = {}
    for pid, a in acc.items():
        held = a.get("held", 0)
        waiting = a["to_send"] - a["already"] - held  # sends to go to someone no plan reached or holds
        if a["planned"] == 0:
            state = "not_planned"
        elif a["to_send"] == a["planned"] and waiting > 0:
            state = "not_started"
        elif waiting == 0 and held == 0 and a["unknown"] == 0 and a["failed_fixable"] == 0 \
                and a["skipped_stopped"] == 0:
            state = "done"          # failures left are the recipient's own (opted out, wrong region...)
        elif waiting == 0 and held == 0 and a["unknown"] == 0:
            state = "stopped"       # nothing left to try, but sends were refused for the campaign or payload
        else:
            state = "in_progress"
        out[pid] = Cutover(plan_id=plan["plan_id"], state=state, planned=a["planned"], sent=a["sent"],
                           delivered=a["delivered"], read=a["read"], failed=a["failed"], skipped=a["skipped"],
                           unknown=a["unknown"], to_send=a["to_send"], already_reached=a["already"],
                           held_by_another_plan=held, held_by_plans=sorted(holders.get(pid, ())))
    # a plan made after a cutover leaves out who already moved (`already_moved`): a page whose
    # subscribers all moved has no sends in it, and its cutover is the one of the plan that moved them
    for pid in _moved_pages(conn, plan["plan_id"], page) - out.keys():
        prior = _prior_plan(conn, plan["plan_id"], pid)
        if prior is not None:
            out.update(cutover(conn, prior, pid))
    return out


def _moved_pages(conn, plan_id: str, page: str | None) -> set[str]:
    """Pages of which the plan left subscriptions out as already moved to MM by earlier plans."""
    q = ("SELECT DISTINCT t.page_id FROM plan_excluded x JOIN tokens t ON t.id = x.token_id"
         " WHERE x.plan_id = ? AND x.reason = 'already_moved'" + (" AND t.page_id = ?" if page else ""))
    return {r[0] for r in conn.execute(q, (plan_id, page) if page else (plan_id,))}


def _prior_plan(conn, plan_id: str, page: str) -> dict[str, Any] | None:
    """The latest other plan with a send to `page` accepted by Meta, as `cutover` reads a plan."""
    row = conn.execute(
        "SELECT c.plan_id FROM plan_campaigns c JOIN exec_sends e ON e.plan_id = c.plan_id"
        " AND e.campaign_key = c.campaign_key AND e.state = 'sent'"
        " JOIN exec_plans x ON x.plan_id = c.plan_id"
        " WHERE c.page_id = ? AND c.plan_id != ? ORDER BY x.first_run_at DESC, c.plan_id LIMIT 1",
        (page, plan_id)).fetchone()
    if row is None:
        return None
    campaigns = [{"key": k, "page_id": p} for k, p in conn.execute(
        "SELECT campaign_key, page_id FROM plan_campaigns WHERE plan_id = ?", (row[0],))]
    return {"plan_id": row[0], "body": {"campaigns": campaigns}}


def _already_reached(conn, plan_id: str, ledger: bool) -> list[tuple[str, int, str | None, int]]:
    """[(campaign_key, reached, holder, n)] for the plan's sends not tried yet that the executor
    will skip as `sent_by_another_plan`: reached = 1 when another plan's send already reached the
    person (page + PSID; the token itself without one: accepted or delivered); else `holder` is
    the (first) other plan whose send to them is unsettled (in flight or unknown, no receipt)."""
    if not _has_rows(conn, "exec_sends"):
        return []
    # no other plan has a ledger (exec_plans: one row per plan that ran): nobody to skip, and no
    # lookup per planned row (at 10M that lookup was most of the readiness report's time)
    if conn.execute("SELECT 1 FROM exec_plans WHERE plan_id != ? LIMIT 1", (plan_id,)).fetchone() is None:
        return []
    rows = ("SELECT e.campaign_key AS k, e.token_id AS tid, e.state AS st FROM exec_sends e WHERE e.plan_id = :p"
            " AND e.state IN ('planned', 'in_flight')") if ledger else \
        "SELECT s.campaign_key AS k, s.token_id AS tid, 'planned' AS st FROM plan_sends s WHERE s.plan_id = :p"

    def other(states: str, tid: str, psid: str, page: str) -> str:
        """Another plan's rows in `states` for the token or its person: two index seeks
        (exec_sends_token; tokens_person), not one OR'ed join, which SQLite cannot seek."""
        return (f"SELECT x.plan_id AS hp FROM exec_sends x WHERE x.token_id = {tid} AND x.plan_id != :p AND {states}"
                f" UNION ALL SELECT x.plan_id FROM tokens o JOIN exec_sends x ON x.token_id = o.id"
                f" WHERE {psid} IS NOT NULL AND o.page_id = {page} AND o.psid = {psid} AND o.id != {tid}"
                f" AND x.plan_id != :p AND {states}")

    reached = "EXISTS (" + other("(x.state = 'sent' OR x.delivered_at IS NOT NULL OR x.read_at IS NOT NULL)",
                                 "t.id", "t.psid", "t.page_id") + ")"
    # looked up only for a send nobody reached that is still planned (one of this plan's own in
    # flight was claimed, so it may be out): the first other plan whose send to them is unsettled;
    # not at all when no other plan has an unsettled row (the partial index exec_sends_unsettled)
    unsettled = conn.execute("SELECT EXISTS (SELECT 1 FROM exec_sends WHERE state IN ('in_flight', 'unknown')"
                             " AND plan_id != ?)", (plan_id,)).fetchone()[0]
    holder = ("(SELECT MIN(hp) FROM (" + other("x.state IN ('in_flight', 'unknown')", "q.tid", "q.psid", "q.pg")
              + "))") if unsettled else "NULL"
    sql = (f"SELECT k, reached, h, COUNT(*) FROM (SELECT q.k AS k, q.reached AS reached,"
           f" CASE WHEN q.reached = 0 AND q.st = 'planned' THEN {holder} END AS h FROM ("
           f"SELECT r.k AS k, r.st AS st, t.id AS tid, t.psid AS psid, t.page_id AS pg, {reached} AS reached"
           f" FROM ({rows}) r JOIN tokens t ON t.id = r.tid) q)"
           " WHERE reached OR h IS NOT NULL GROUP BY 1, 2, 3")
    return conn.execute(sql, {"p": plan_id}).fetchall()


def is_done(cut: Cutover | None, counts: PageCounts | None) -> bool:
    """A page is done when its plan's sends are through *and* nobody is left to move: the one rule
    the readiness status and the audit's "N pages are done" both read, so they cannot disagree."""
    return cut is not None and cut.state == "done" and (counts is None or counts.move == 0)


def sent_messages(conn, plan: dict[str, Any] | None) -> dict[str, set[str]]:
    """{page_id: the plan's messages (canonical JSON) Meta accepted at least one send of}: text
    already out needs nobody's approval any more."""
    if plan is None or not _has_rows(conn, "exec_sends"):
        return {}
    body = plan["body"]
    page_of = {c["key"]: c["page_id"] for c in body.get("campaigns", [])}
    text_of = {m["key"]: (page_of.get(m.get("campaign_key")), canonical(m.get("message")))
               for m in body.get("messages", []) if m.get("message") is not None}
    out: dict[str, set[str]] = {}
    for key, in conn.execute("SELECT DISTINCT message_key FROM exec_sends WHERE plan_id = ?"
                             " AND (state = 'sent' OR delivered_at IS NOT NULL OR read_at IS NOT NULL)",
                             (plan["plan_id"],)):
        pid, text = text_of.get(key, (None, None))
        if pid is not None:
            out.setdefault(pid, set()).add(text)
    return out


def canonical(message: Any) -> str:
    import json

    return json.dumps(message, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def plan_spec(conn, plan: dict[str, Any] | None):
    """The latest plan's spec, re-read from the file it was made from (None if it is gone or unreadable)."""
    if plan is None:
        return None
    path = plan.get("spec_path")
    if not path or not Path(path).is_file():
        return None
    from migrator.errors import MigratorError
    from migrator.plan.spec import load_spec

    try:
        return load_spec(path)
    except (MigratorError, OSError):
        return None


def value_per_subscriber(conn, plan: dict[str, Any] | None, spec: Any = None) -> tuple[Any, str | None]:
    """(SubscriberValue | None, a note saying why there is none)."""
    if plan is None:
        return None, "No plan yet, so no value per subscriber: state `value_per_subscriber` in the plan spec."
    spec = spec or plan_spec(conn, plan)
    if spec is None:
        return None, (f"The spec of plan {plan['plan_id']} cannot be read, so no value per subscriber is known.")
    if spec.value_per_subscriber is None:
        return None, ("The plan spec states no value per subscriber (`value_per_subscriber = { amount = 150, "
                      "currency = \"USD\" }` puts a value on these losses).")
    return spec.value_per_subscriber, None


def money_of(minor: int, currency: str, basis: str) -> Money:
    return Money(minor=minor, currency=currency.upper(), text=format_money(minor, currency), basis=basis)


def countdown(counts: dict[str, PageCounts], names: dict[str, str | None], as_of: date, cutoff: date,
              value: Any = None, value_note: str | None = None) -> Countdown | None:
    """What is lost on RN's discontinuation if nothing is done; None on or after the date."""
    days = (cutoff - as_of).days
    if days <= 0:
        return None
    pages = []
    for pid, c in counts.items():
        n = c.lost_on_deadline
        if n == 0:
            continue
        pages.append(PageLoss(page_id=pid, name=names.get(pid), subscribers=n, to_move=c.move, at_risk=c.at_risk,
                              lost=c.lost, undecided=c.undecided,
                              value=money_of(n * value.amount, value.currency, "value") if value else None))
    pages.sort(key=lambda p: (-p.subscribers, p.page_id))
    total = sum(p.subscribers for p in pages)
    return Countdown(deadline=cutoff.isoformat(), days_left=days, subscribers=total,
                     undecided=sum(c.undecided for c in counts.values()),
                     value=[money_of(total * value.amount, value.currency, "value")] if value else [],
                     value_note=None if value else value_note, pages=pages)


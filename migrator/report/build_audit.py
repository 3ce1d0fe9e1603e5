"""The audit report model (for partners): verdicts, findings, regions, content, rule dates.

Everything is read from the latest finished audit run with a handful of set-based queries;
per-token detail never leaves SQLite (the regions chart is a GROUP BY), so a 10M-token
estate builds in the time of one scan of `audit_tokens`.
"""

from __future__ import annotations

import json
import time
from datetime import date

from migrator.report.common import (Clock, glossary, latest_audit_run, latest_plan, provenance,
                                    rules_for_run)
from migrator.report.models import (AuditReport, ContentChange, ContentRow, FindingRow, RegionRow,
                                    TimelineEvent, VerdictCount)
from migrator.rules import Rules

CONTENT_LIMIT = 200   # content rows shown in full; problem content first
REGION_ROWS = 15      # countries drawn in the chart; the rest are summed

VERDICTS = {
    "migrate": ("Move to MM", "MM can deliver to the subscriber and the business may use MM."),
    "stay_on_rn": ("Stay on RN", "RN keeps working for the subscriber's region, or MM is not an option yet."),
    "blocked": ("Lost", "Neither RN nor MM can reach the subscriber after RN stops."),
    "opted_out": ("Opted out", "The person stopped these messages; they are never messaged."),
    "review": ("Needs review", "The region is unknown or ambiguous and the verdict depends on it."),
}

TIMELINE = {
    "rn_token_expiry_ended": "RN tokens stop expiring",
    "mm_launch": "Marketing Messages available",
    "rn_integration_stop": "No new RN integrations",
    "rn_cadence_change": "RN limited to one send per 48 h",
    "rn_deprecation_announced": "RN deprecation announced",
    "rn_discontinuation": "RN stops outside the exempt regions",
}

_OUTCOME_ORDER = ("CASE a.outcome WHEN 'unsupported' THEN 0 WHEN 'needs_edit' THEN 1 WHEN 'lossy' THEN 3"
                  " WHEN 'exact' THEN 4 ELSE 2 END")


def _pretty(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _changes(text: str | None) -> list[ContentChange]:
    if not text:
        return []
    try:
        items = json.loads(text)
    except ValueError:
        return [ContentChange(code="UNREADABLE", detail=text[:200])]
    out = []
    for c in items if isinstance(items, list) else []:
        if isinstance(c, dict):
            code = c.get("mm_error_code")
            out.append(ContentChange(code=str(c.get("code", "")), detail=str(c.get("detail", "")),
                                     mm_error_code=code if isinstance(code, int) else None))
    return out


def _regions(conn) -> tuple[list[RegionRow], RegionRow | None]:
    counts: dict[str, dict[str, int]] = {}
    for region, src, n in conn.execute(
            "SELECT region, region_source, COUNT(*) FROM audit_tokens WHERE region IS NOT NULL"
            " GROUP BY region, region_source"):
        counts.setdefault(region, {}).setdefault(src, 0)
        counts[region][src] += n
    rows = [RegionRow(country=c, explicit=v.get("explicit", 0), inferred=v.get("timezone", 0),
                      from_errors=v.get("mm_error", 0)) for c, v in counts.items()]
    rows.sort(key=lambda r: (-(r.explicit + r.inferred + r.from_errors), r.country))
    top, rest = rows[:REGION_ROWS], rows[REGION_ROWS:]
    other = None
    if rest:
        other = RegionRow(country=f"{len(rest)} other countries", explicit=sum(r.explicit for r in rest),
                          inferred=sum(r.inferred for r in rest), from_errors=sum(r.from_errors for r in rest))
    return top, other


def _content_rows(conn, run_id: int) -> list[ContentRow]:
    rows = conn.execute(
        f"SELECT c.id, c.content_hash, a.page_id, p.name, c.topic_title, c.key, c.source, a.uses, a.outcome,"
        f" c.message, c.mm_message, c.changes, c.problems"
        f" FROM audit_contents a JOIN contents c ON c.id = a.content_id"
        f" LEFT JOIN pages p ON p.page_id = a.page_id"
        f" WHERE a.run_id = ? ORDER BY {_OUTCOME_ORDER}, a.uses DESC, c.id LIMIT ?",
        (run_id, CONTENT_LIMIT))
    return [ContentRow(content_id=r[0], content_hash=r[1][:12], page_id=r[2], page_name=r[3],
                       topic_title=r[4], key=r[5], source=r[6], uses=r[7], outcome=r[8],
                       rn_message=_pretty(r[9]) or "", mm_message=_pretty(r[10]),
                       changes=_changes(r[11]), problems=_changes(r[12])) for r in rows]


def timeline(rules: Rules, as_of: date) -> list[TimelineEvent]:
    out = []
    for name, label in TIMELINE.items():
        e = getattr(rules, name)
        out.append(TimelineEvent(name=name, label=label, date=e.value.isoformat(),
                                 days_from_as_of=(e.value - as_of).days, note=e.note, sources=list(e.sources)))
    out.sort(key=lambda t: t.date)
    return out


def build_audit_report(ws, *, rules: Rules | None = None, clock: Clock = time.time) -> AuditReport:
    """The audit report of the workspace's latest finished audit (ReportError if there is none)."""
    conn = ws.db.conn
    run = latest_audit_run(ws)
    rules, note = rules_for_run(run, rules)
    plan = latest_plan(ws)
    s = run["summary"]
    run_id = run["id"]
    findings = []
    for code, scope, severity, expl, remedy, sources, count in conn.execute(
            "SELECT code, scope, severity, explanation, remedy, sources, count FROM audit_run_findings"
            " WHERE run_id = ? ORDER BY CASE severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,"
            " count DESC, code", (run_id,)):
        findings.append(FindingRow(code=code, scope=scope, severity=severity, count=count, explanation=expl,
                                   remedy=remedy, sources=json.loads(sources)))
    regions, other = _regions(conn)
    contents_total = conn.execute("SELECT COUNT(*) FROM audit_contents WHERE run_id = ?", (run_id,)).fetchone()[0]
    rejects = conn.execute("SELECT COUNT(*) FROM rejects WHERE severity = 'reject'").fetchone()[0]
    from migrator.report.build_execution import _countdown
    from migrator.report.readmodel import cutover, is_done, page_counts

    by_page = page_counts(conn, run_id)          # one scan: the countdown and the moved totals share it
    counts = by_page.values()
    return AuditReport(
        provenance=provenance(ws, run, rules, note, plan, clock),
        countdown=_countdown(conn, run, rules, plan, by_page),
        moved=sum(c.moved for c in counts), delivered=sum(c.delivered for c in counts),
        read=sum(c.read for c in counts), pages_done=sum(is_done(c, by_page.get(pid)) for pid, c in cutover(conn, plan).items()),
        tokens=s.get("tokens", 0),
        recipients=s.get("recipients", 0),
        verdicts=[VerdictCount(verdict=v, label=VERDICTS[v][0], meaning=VERDICTS[v][1],
                               tokens=s.get("verdicts", {}).get(v, 0)) for v in VERDICTS],
        pages=s.get("pages", {}),
        contents=s.get("contents", {}),
        region_sources=s.get("region_sources", {}),
        regions=regions,
        regions_other=other,
        findings=findings,
        contents_total=contents_total,
        content_rows=_content_rows(conn, run_id),
        timeline=timeline(rules, date.fromisoformat(run["as_of"])),
        rejects=rejects,
        options=run["options"],
        glossary=glossary("RN", "MM", "Subscription", "Recipient region", "Inferred region",
                          "Business country", "As-of date"),
    )

"""`migrator report readiness --per-page -o DIR`: one file per business, plus an index.

The readiness report is built once for the whole estate and split: each page's file holds that
page only (its row, its actions, its messages, its countdown) and none of the workspace's
internals: no workspace file, audit run number, fingerprints (a plan id is one: 'p' + the first
12 hex of the plan's fingerprint), rule overrides or other pages. Those are removed from the
model itself, so they are neither shown nor in the embedded JSON; the provenance a business
needs (when, as of which date, which version of Meta's rules) is a short footer.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import escape

from migrator.outputs import check_output
from migrator.report.build_readiness import build_readiness_report
from migrator.report.common import Clock
from migrator.report.models import Countdown, Provenance, ReadinessReport
from migrator.report.output import output_dir, write_text
from migrator.outputs import neutralize_bidi
from migrator.report.render import render_report

PLAN_WORDS = "the migration plan"


def safe_name(name: str | None, page_id: str, limit: int = 48) -> str:
    """'Acme Outlet US', '949326690342998' -> 'acme-outlet-us-949326690342998.html' (ASCII, no path tricks)."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:limit].strip("-")
    pid = re.sub(r"[^A-Za-z0-9_]+", "_", page_id).strip("_")[:64] or "page"
    return f"{slug}-{pid}.html" if slug else f"page-{pid}.html"


def business_model(full: ReadinessReport, page_id: str) -> ReadinessReport:
    """The readiness model of one page, stripped of workspace internals (for that business)."""
    page = next(p for p in full.pages if p.page_id == page_id)
    # the converter's technical wording (JSON paths, error codes) is the partner's, not the business's
    page = page.model_copy(update={"approvals": [m.model_copy(update={"detail": []}) for m in page.approvals]})
    if page.cutover is not None and page.cutover.held_by_plans:
        # other plans' ids are fingerprints too: the business file counts the held sends, names no plan
        page = page.model_copy(update={"cutover": page.cutover.model_copy(update={"held_by_plans": []})})
    prov = full.provenance
    clean_prov = Provenance(
        migrator_version=prov.migrator_version, generated_at=prov.generated_at, as_of=prov.as_of,
        audit_run_id=None, workspace="", rules_version=prov.rules_version, rules_fingerprint=None,
        rules_note=None, rules=[], plan_id=None, plan_fingerprint=None, plan_note=None)
    cd = full.countdown
    if cd is not None:
        mine = [x for x in cd.pages if x.page_id == page_id]
        cd = Countdown(deadline=cd.deadline, days_left=cd.days_left, subscribers=sum(x.subscribers for x in mine),
                       undecided=page.subscribers.undecided,
                       value=[x.value for x in mine if x.value is not None], value_note=None, pages=mine)
    model = full.model_copy(update={
        "provenance": clean_prov, "countdown": cd, "page_filter": page_id, "pages": [page], "pages_total": 1,
        "statuses": {s: int(page.status == s) for s in full.statuses}, "subscribers": page.subscribers,
        "deadline": page.deadline, "days_to_deadline": page.days_to_deadline})
    # plan ids are fingerprints: name the plan in words wherever the texts mention it
    text = model.model_dump_json()
    if prov.plan_id:
        text = text.replace(f"plan {prov.plan_id}'s", f"{PLAN_WORDS}'s").replace(f"plan {prov.plan_id}", PLAN_WORDS)
        text = text.replace(prov.plan_id, PLAN_WORDS)
    return ReadinessReport.model_validate(json.loads(text))


@dataclass
class PerPageResult:
    index: Path
    files: dict[str, Path] = field(default_factory=dict)   # page_id -> file

    def to_json(self) -> dict:
        return {"index": str(self.index), "files": {k: str(v) for k, v in self.files.items()}}


def write_per_page(ws, out_dir: str | Path, *, clock: Clock = time.time, force: bool = False) -> PerPageResult:
    """One readiness file per page in `out_dir` (named by page name and id) and `index.html`."""
    out = output_dir(out_dir)
    full = build_readiness_report(ws, clock=clock)
    result = PerPageResult(index=out / "index.html")
    used: set[str] = set()
    names: dict[str, str] = {}
    for p in full.pages:
        name = safe_name(p.name, p.page_id)
        while name in used:                     # two ids that sanitise alike
            name = name[:-5] + "_.html"
        used.add(name)
        names[p.page_id] = name
    # every target is checked before the first is written: a refused index.html (or business
    # file) must not leave the other files written behind an error exit
    for target in [*(out / n for n in names.values()), result.index]:
        check_output(target, force=force, workspace=ws.path)
    for p in full.pages:
        html = render_report(business_model(full, p.page_id), business=True)
        result.files[p.page_id] = write_text(out / names[p.page_id], html, force=force, workspace=ws.path)
    write_text(result.index, _index_html(full, result), force=force, workspace=ws.path)
    return result


_STATUS = {"done": "✓✓ Done", "ready": "✓ Ready", "needs_action": "! Needs action", "blocked": "✕ Blocked"}


def _index_html(full: ReadinessReport, result: PerPageResult) -> str:
    """A plain list of the business files (for the account manager who sends them)."""
    rows = []
    for p in full.pages:
        f = result.files[p.page_id].name
        s = p.subscribers
        rows.append(f'<tr><td><a href="{escape(f)}"><bdi>{escape(neutralize_bidi(p.name or p.page_id))}</bdi></a><br><code>{escape(p.page_id)}</code>'
                    f'</td><td>{escape(_STATUS[p.status])}</td><td class="n">{s.moved:,}</td><td class="n">{s.move:,}</td>'
                    f'<td class="n">{s.lost:,}</td><td class="n">{s.total:,}</td><td><code>{escape(f)}</code></td></tr>')
    as_of = escape(full.provenance.as_of or "")
    n = len(full.pages)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="migrator">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>Readiness files, one per business – as of {as_of}</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:1rem}}
table{{border-collapse:collapse;width:100%}}th,td{{border-bottom:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;
vertical-align:top}}td.n{{text-align:right;font-variant-numeric:tabular-nums}}div.wide{{overflow-x:auto}}
code{{color:#57606a;overflow-wrap:anywhere}}</style></head>
<body><h1>Readiness: one file per business</h1>
<p>As of {as_of}: {n:,} {"file" if n == 1 else "files"}, one per page. Each file shows that business only; send it as it is.</p>
<div class="wide"><table><thead><tr><th scope="col">Page</th><th scope="col">Status</th><th scope="col">Moved</th>
<th scope="col">To move</th><th scope="col">Lost</th><th scope="col">Subscriptions</th><th scope="col">File</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></div>
</body></html>
"""

"""Render a report model to one self-contained HTML file (Jinja2, autoescape on).

Templates ship in the wheel as `migrator/templates/` (pyproject force-include); in a source
checkout they are the repository's top-level `templates/`. The model goes into the page as
JSON inside <script type="application/json"> with <, > and & escaped as \\u003c etc., so no
inventory text can close the script element. Large tables are capped in the HTML and
written in full to a CSV beside it.
"""

from __future__ import annotations

import csv
import io
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from migrator.outputs import check_output, first_line_of, neutralize_bidi
from migrator.report import svg
from migrator.report.output import csv_cell, write_text
from migrator.words import noun, plural
from migrator.report.models import AuditReport, ExecutionReport, ReadinessReport

Report = AuditReport | ReadinessReport | ExecutionReport

HTML_PAGES = 300      # readiness: pages listed (and embedded) in the HTML; every page is in the CSV
HTML_COUNTDOWN = 50  # countdown: pages listed (and embedded) in the HTML; every page is in --json
HTML_BATCHES = 200    # execution: batches listed (and embedded) in the HTML; every batch is in the CSV

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def template_dir() -> Path:
    """The installed `migrator/templates`, else the source checkout's `templates/`."""
    try:
        installed = resources.files("migrator") / "templates"
        if installed.is_dir() and (installed / "base.html.j2").is_file():
            return Path(str(installed))
    except (ModuleNotFoundError, NotADirectoryError):  # pragma: no cover - odd installs
        pass
    return Path(__file__).resolve().parents[2] / "templates"


def model_json(model: Report) -> str:
    return json.dumps(model.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))


def embed_json(model: Report) -> Markup:
    """The model as JSON safe inside a <script> element (no '<', '>' or '&' left raw)."""
    text = model_json(model)
    for raw, esc in _JSON_ESCAPES.items():
        text = text.replace(raw, esc)
    return Markup(text)


def _finalize(v: Any) -> Any:
    """Every {{ value }}: bidi override/embedding controls in plain text are made visible,
    whatever template or attribute the value lands in."""
    if isinstance(v, str) and not isinstance(v, Markup):
        return neutralize_bidi(v)
    return v


def _user_text(v: Any) -> Markup:
    """`{{ x | user }}`: text a partner or person wrote (page names, titles), escaped and
    isolated in <bdi> so right-to-left text cannot reorder what surrounds it."""
    if v is None or v == "":
        return Markup("")
    return Markup("<bdi>%s</bdi>") % neutralize_bidi(str(v))


def _num(v: Any) -> str:
    return "–" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


@lru_cache(maxsize=4)
def _env(path: str) -> Environment:
    env = Environment(loader=FileSystemLoader(path), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, finalize=_finalize)
    env.filters["num"] = _num
    env.filters["user"] = _user_text
    env.filters["label"] = lambda s: str(s).replace("_", " ")
    env.filters["plural"] = lambda n, word: plural(n, word)
    env.filters["noun"] = lambda n, word: noun(n, word)
    env.globals.update(stacked_bars=svg.stacked_bars, timeline=svg.timeline, columns=svg.columns)
    return env


def html_model(model: Report) -> Report:
    """The model as the HTML shows and embeds it: large lists cut to the most urgent rows
    (the full lists go to the CSV beside the file, and to `--json`)."""
    cd = model.countdown
    if cd is not None and len(cd.pages) > HTML_COUNTDOWN:
        model = model.model_copy(update={"countdown": cd.model_copy(update={"pages": cd.pages[:HTML_COUNTDOWN]})})
    if isinstance(model, ReadinessReport):
        return model.trimmed(HTML_PAGES)
    if isinstance(model, ExecutionReport):
        return model.trimmed(HTML_BATCHES)
    return model


def render_report(model: Report, *, business: bool = False) -> str:
    """The report as one HTML document (string); it embeds `html_model(model)` as JSON.

    `business`: a file for the business itself (readiness --per-page): no workspace internals in
    the header; the provenance is a short footer (the model must already be business_model()'s).
    """
    model = html_model(model)
    env = _env(str(template_dir()))
    sources = [] if business else source_list(model)
    number = {u: i for i, u in enumerate(sources, 1)}

    def refs(urls) -> Markup:
        """Sources as short numbered references to the list at the end of the file."""
        return Markup(" ").join(Markup('<a class="ref" href="#src-{0}">[{0}]</a>').format(number[u])
                                for u in urls if u in number)

    return env.get_template(f"{model.kind}.html.j2").render(r=model, data_json=embed_json(model), business=business,
                                                            sources=sources, refs=refs)


def source_list(model: Report) -> list[str]:
    """Every source URL the report cites, once, in order of first citation (findings, dates, rules)."""
    seen: dict[str, None] = {}
    if isinstance(model, AuditReport):
        for f in model.findings:
            seen.update(dict.fromkeys(f.sources))
        for t in model.timeline:
            seen.update(dict.fromkeys(t.sources))
    for e in model.provenance.rules:
        seen.update(dict.fromkeys(e.sources))
    return list(seen)


def _cell(v: Any) -> Any:
    # a spreadsheet runs cells starting with = + - @ as formulas: inventory text must not
    return csv_cell(v)


def readiness_csv(model: ReadinessReport) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["page_id", "name", "business_country", "status", "reasons", "deadline", "days_to_deadline",
                "move", "stay", "at_risk", "lost", "opted_out", "undecided", "total", "actions", "estimated_cost",
                "moved", "delivered", "read", "cutover", "daily_limited", "expired", "region_conflict",
                "messages_to_approve", "accepted_cost", "delivered_cost", "needs_country",
                "cutover_to_send", "already_reached", "held_by_another_plan", "subscribers_held_by_another_plan"])
    for p in model.pages:
        s = p.subscribers
        cu = p.cutover
        # the plan's sends still to go, and those it skips: people another plan reached or holds
        skips = (cu.to_send - cu.already_reached - cu.held_by_another_plan, cu.already_reached,
                 cu.held_by_another_plan) if cu else (0, 0, 0)
        w.writerow([_cell(x) for x in (
            p.page_id, p.name, p.business_country, p.status, " ".join(p.reasons), p.deadline, p.days_to_deadline,
            s.move, s.stay, s.at_risk, s.lost, s.opted_out, s.undecided, s.total,
            " | ".join(f"{a.who}: {a.what}" for a in p.actions), "; ".join(c.estimated_cost for c in p.cost),
            s.moved, s.delivered, s.read, p.cutover.state if p.cutover else "not_planned",
            s.daily_limited, s.expired, s.region_conflict, p.approvals_total,
            "; ".join(c.accepted_cost for c in p.cost if c.accepted_cost),
            "; ".join(c.delivered_cost for c in p.cost if c.delivered_cost), s.needs_country, *skips,
            s.held_by_another_plan)])
    return out.getvalue()


def execution_csv(model: ExecutionReport) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    fields = ["planned", "sent", "skipped", "failed", "unknown", "delivered", "read"]
    w.writerow(["batch", "day", "not_before", *fields])
    for b in model.batches:
        w.writerow([b.batch, b.day, b.not_before, *(getattr(b.counts, f) for f in fields)])
    return out.getvalue()


def default_output(model: Report, base: Path | None = None) -> Path:
    base = base or Path("reports")
    if isinstance(model, ReadinessReport) and model.page_filter:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in model.page_filter)
        return base / f"readiness-{safe}.html"
    if isinstance(model, ExecutionReport):
        return base / f"execution-{model.plan_id}.html"
    return base / f"{model.kind}.html"


def _atomic_write(path: Path, text: str, *, force: bool = False, workspace=None) -> None:
    """report.output -> migrator.outputs: atomic, never over the workspace or a file migrator
    did not write."""
    write_text(path, text, force=force, workspace=workspace)


def write_report(model: Report, out: str | Path | None = None, *, force: bool = False,
                 workspace=None) -> list[Path]:
    """Write the HTML (and, for readiness and execution, the full table as CSV beside it).

    Returns the paths written, the HTML first. Both paths are checked before either is
    written (migrator.outputs).
    """
    path = Path(out) if out is not None else default_output(model)
    files = [(path, render_report(model))]
    if isinstance(model, ReadinessReport):
        files.append((path.with_suffix(".pages.csv"), readiness_csv(model)))
    elif isinstance(model, ExecutionReport):
        files.append((path.with_suffix(".batches.csv"), execution_csv(model)))
    for target, text in files:
        check_output(target, force=force, workspace=workspace, first_line=first_line_of(text))
    for target, text in files:
        _atomic_write(target, text, force=force, workspace=workspace)
    return [target for target, _ in files]


def write_model_json(model: Report, out: str | Path, *, force: bool = False, workspace=None) -> Path:
    path = Path(out)
    _atomic_write(path, json.dumps(model.model_dump(mode="json"), ensure_ascii=False, indent=1) + "\n",
                  force=force, workspace=workspace)
    return path

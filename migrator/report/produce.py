"""One call per report for the CLI and scripts: build the model, then write HTML (+CSV) or JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from migrator.outputs import check_output
from migrator.report.build_audit import build_audit_report
from migrator.report.build_execution import build_execution_report
from migrator.report.build_readiness import build_readiness_report
from migrator.report.common import Clock, ReportError
from migrator.report.render import Report, default_output, write_model_json, write_report

KINDS = ("audit", "readiness", "execution")


@dataclass
class ReportOutput:
    model: Report
    paths: list[Path] = field(default_factory=list)   # files written (HTML first); [] = JSON not written


def build_report(ws, kind: str, *, page: str | None = None, plan: str | None = None,
                 clock: Clock = time.time) -> Report:
    if kind == "audit":
        return build_audit_report(ws, clock=clock)
    if kind == "readiness":
        return build_readiness_report(ws, page=page, clock=clock)
    if kind == "execution":
        return build_execution_report(ws, plan=plan, clock=clock)
    raise ReportError(f"unknown report {kind!r}", hint=f"use one of: {', '.join(KINDS)}")


def make_report(ws, kind: str, *, out: str | Path | None = None, as_json: bool = False,
                page: str | None = None, plan: str | None = None, reports_dir: str | Path = "reports",
                clock: Clock = time.time, force: bool = False) -> ReportOutput:
    """Build report `kind` and write it: HTML (default `reports/<kind>.html`) or, with
    `as_json`, the model as JSON to `out` (nothing written when `out` is None: the caller
    prints `model`)."""
    safe = {"force": force, "workspace": getattr(ws, "path", None)}
    if out is not None:
        check_output(out, **safe)  # refuse before building anything
    model = build_report(ws, kind, page=page, plan=plan, clock=clock)
    if as_json:
        return ReportOutput(model, [write_model_json(model, out, **safe)] if out is not None else [])
    target = Path(out) if out is not None else default_output(model, Path(reports_dir))
    return ReportOutput(model, write_report(model, target, **safe))

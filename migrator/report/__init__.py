"""HTML reports: audit (partners), readiness (account managers), execution (engineers).

Public API (the CLI `migrator report ...` calls these; scripts and tests can too):
- `build_audit_report(ws)`, `build_readiness_report(ws, page=None)`,
  `build_execution_report(ws, plan=None)` -> pydantic models (models.py);
- `make_report(ws, kind, out=None, as_json=False, page=None, plan=None)`: build + write
  (what each `migrator report ...` command calls);
- `render_report(model) -> str` (one self-contained HTML document);
- `write_report(model, out=None) -> [paths]` (HTML, plus a CSV of the full table beside
  readiness and execution reports), `write_model_json(model, out)`.
"""

from migrator.report.build_audit import build_audit_report
from migrator.report.build_execution import build_execution_report
from migrator.report.build_readiness import build_readiness_report
from migrator.report.common import ReportError
from migrator.report.models import AuditReport, ExecutionReport, ReadinessReport
from migrator.report.produce import KINDS, ReportOutput, build_report, make_report
from migrator.report.render import (default_output, embed_json, model_json, render_report, template_dir,
                                    write_model_json, write_report)

__all__ = ["AuditReport", "ExecutionReport", "KINDS", "ReadinessReport", "ReportError", "ReportOutput",
           "build_audit_report", "build_execution_report", "build_readiness_report", "build_report",
           "default_output", "embed_json", "make_report", "model_json", "render_report", "template_dir",
           "write_model_json", "write_report"]

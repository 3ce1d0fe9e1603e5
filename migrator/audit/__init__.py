"""The dry-run audit: what happens to every subscriber, page and piece of content, as of a date.

`run_audit(db, as_of=..., rules=...)` stores its results in the workspace (tables
audit_runs, audit_tokens, audit_pages, audit_contents, audit_run_findings; views
v_audit_migrate, v_audit_token_findings, ...) and returns an `AuditResult` whose
`to_json()` is what `migrator audit --json` prints. It never calls the network.
"""

from migrator.audit.decide import VERDICTS, Context, Decision, decide
from migrator.audit.engine import AuditResult, audit_freshness, latest_audit, run_audit
from migrator.audit.findings import BY_CODE, FINDINGS, Finding

__all__ = ["AuditResult", "audit_freshness", "BY_CODE", "Context", "Decision", "FINDINGS", "Finding", "VERDICTS",
           "decide", "latest_audit", "run_audit"]

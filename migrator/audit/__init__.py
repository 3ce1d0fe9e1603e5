"""The dry-run audit: what happens to every subscriber, page and piece of content, as of a date.

`run_audit(ws, as_of=..., rules=...)` stores its results in the workspace (tables
audit_runs, audit_tokens, audit_pages, audit_contents, audit_run_findings; views
v_audit_migrate, v_audit_token_findings, ...) and returns an `AuditResult` whose
`to_json()` is what `migrator audit --json` prints. It never calls the network.
`latest_run(ws)` is the latest finished run (or None), `fingerprint(ws)` a digest of its
results (for a plan's staleness check), `audit_freshness(ws)` whether ingests came after it.
"""

from migrator.audit.decide import VERDICTS, Context, Decision, decide
from migrator.audit.engine import AuditResult, run_audit
from migrator.audit.findings import BY_CODE, FINDINGS, Finding
from migrator.audit.runs import AuditRun, audit_freshness, fingerprint, latest_run

__all__ = ["AuditResult", "AuditRun", "BY_CODE", "Context", "Decision", "FINDINGS", "Finding", "VERDICTS",
           "audit_freshness", "decide", "fingerprint", "latest_run", "run_audit"]

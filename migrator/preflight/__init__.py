"""Preflight: know before the first billed send that every page and ad account of a plan can send.

Public API:
- `load_targets(ws, PLAN.json | SPEC.toml) -> Targets`: the pages and ad accounts a plan uses;
- `run_preflight(targets, client, allowed_countries=..., page_tokens=..., client_for_token=...)
  -> PreflightReport` (read-only Graph calls; pure checks in `checks.py`);
- `load_page_tokens(path)`: the `page_id<TAB>token` map (0600);
- `save_preflight(ws, report)`, `latest_page_states(conn)`: results in the workspace;
- `guidance.SETUP_STOPS`: the send-time set-up codes the executor turns into one stop per page.
"""

from migrator.preflight.guidance import GUIDES, SETUP_STOPS, setup_stop_text
from migrator.preflight.run import (PreflightReport, Targets, load_page_tokens, load_targets, preflight, run_preflight,
                                    targets_from_plan, targets_from_spec)
from migrator.preflight.store import latest_page_states, save_preflight

__all__ = ["GUIDES", "PreflightReport", "SETUP_STOPS", "Targets", "latest_page_states", "load_page_tokens",
           "load_targets", "preflight", "run_preflight", "save_preflight", "setup_stop_text", "targets_from_plan",
           "targets_from_spec"]

"""CSV exports for a partner's CRM team: the subscriptions only the CRM can help with.

- `needs-country.csv`: subscriptions whose verdict waits on the recipient's country (verdict
  `review` with no candidate country or several): the CRM often knows the country. Columns: token_hash, psid_hash (the first 12 hex
  of SHA-256 of the PSID, so the CRM can match its own records without us sending PSIDs),
  page, time zone, the candidate countries and what each would mean.
- `needs-opt-in.csv`: subscriptions Meta refused as expired or invalid: only the person can
  opt in again, so the business must invite them. Opted-out people are never listed.

Rows stream straight from SQLite to the file (flat memory on 10M tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from migrator.audit.findings import mask
from migrator.privacy import short_hash
from migrator.report.common import latest_audit_run
from migrator.report.output import output_dir, write_csv

COUNTRY_HEADER = ["token_hash", "psid_hash", "page_id", "page_name", "topic", "timezone", "candidates",
                  "verdict_per_candidate", "how_the_country_was_sought"]
OPTIN_HEADER = ["token_hash", "psid_hash", "page_id", "page_name", "topic", "why", "seen"]


@dataclass
class CrmExport:
    needs_country: Path
    needs_country_rows: int
    needs_opt_in: Path
    needs_opt_in_rows: int

    def to_json(self) -> dict:
        return {"needs_country": {"file": str(self.needs_country), "rows": self.needs_country_rows},
                "needs_opt_in": {"file": str(self.needs_opt_in), "rows": self.needs_opt_in_rows}}


# an undecided subscription whose recipient's country is what is unclear (no candidate, or several),
# not the business's (the pages file has that): the rows of needs-country.csv, and the figure the
# readiness report's "add an explicit country" action counts
UNCLEAR_COUNTRY = "(a.candidates IS NULL OR instr(a.candidates, ',') > 0)"

def _has_table(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None


def write_crm_exports(ws, out_dir: str | Path, *, page: str | None = None, force: bool = False) -> CrmExport:
    """Write needs-country.csv and needs-opt-in.csv into `out_dir` from the latest audit."""
    conn = ws.db.conn
    run = latest_audit_run(ws)
    out = output_dir(out_dir)
    pf = " AND a.page_id = ?" if page else ""
    args = (run["id"], page) if page else (run["id"],)

    def country_rows():
        for th, psid, pid, name, topic, tz, cands, detail, src in conn.execute(
                "SELECT t.token_hash, t.psid, a.page_id, p.name, t.topic_title, t.timezone, a.candidates, a.detail,"
                " a.region_source FROM audit_tokens a JOIN tokens t ON t.id = a.token_id"
                " LEFT JOIN pages p ON p.page_id = a.page_id"
                " WHERE a.run_id = ? AND a.verdict = 'review'"
                # the recipient's country is what is unclear (not the business's: the pages file has that)
                f" AND {UNCLEAR_COUNTRY}" + pf + " ORDER BY a.page_id, a.token_id",
                args):
            yield (th, short_hash(psid), pid, name, topic, tz or "", cands or "unknown", detail or "",
                   {"timezone": "inferred from the time zone (several countries)",
                    "unknown": "no country and no usable time zone"}.get(src, src))

    feedback = _has_table(conn, "mm_feedback")
    fb_join = " LEFT JOIN mm_feedback f ON f.token_id = a.token_id" if feedback else ""
    fb_state = "f.state" if feedback else "NULL"
    fb_seen = "f.seen_at" if feedback else "NULL"

    def optin_rows():
        from migrator.report.common import iso_utc

        expired = mask("TOKEN_EXPIRED")
        for th, psid, pid, name, topic, state, seen, mm_state in conn.execute(
                f"SELECT t.token_hash, t.psid, a.page_id, p.name, t.topic_title, {fb_state}, {fb_seen}, t.mm_state"
                f" FROM audit_tokens a JOIN tokens t ON t.id = a.token_id LEFT JOIN pages p ON p.page_id = a.page_id"
                f"{fb_join} WHERE a.run_id = ? AND a.verdict != 'opted_out'"
                f" AND ((a.flags & {expired}) != 0"
                + (" OR f.state IN ('expired', 'invalid')" if feedback else "") + ")" + pf
                + " ORDER BY a.page_id, a.token_id", args):
            why = state or mm_state or "expired"
            yield (th, short_hash(psid), pid, name, topic,
                   f"Meta refused the subscription as {why}: the person must opt in again", iso_utc(seen) or "")

    nc = out / "needs-country.csv"
    no = out / "needs-opt-in.csv"
    from migrator.outputs import check_output

    for target, header in ((nc, COUNTRY_HEADER), (no, OPTIN_HEADER)):   # both refused or both written
        check_output(target, force=force, workspace=ws.path, first_line=",".join(header).encode("utf-8"))
    n1 = write_csv(nc, COUNTRY_HEADER, country_rows(), force=force, workspace=ws.path)
    n2 = write_csv(no, OPTIN_HEADER, optin_rows(), force=force, workspace=ws.path)
    return CrmExport(nc, n1, no, n2)

"""`migrator report crm`: CSV files the CRM team can act on (a country, a new opt-in), safe in a spreadsheet."""

from __future__ import annotations

import csv
import json

from _report import build_estate

from migrator.audit import run_audit
from migrator.privacy import short_hash


def _rows(path):
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_needs_country_and_needs_opt_in(ws, tmp_path, cli):
    build_estate(ws, tmp_path / "in", with_plan=False)
    conn = ws.db.conn
    # Meta refused one P1 subscription as expired (what the executor records), then a fresh audit
    tid, th, psid = conn.execute("SELECT id, token_hash, psid FROM tokens WHERE page_id = 'P1' AND status = 'active'"
                                 " ORDER BY id LIMIT 1").fetchone()
    conn.execute("INSERT INTO mm_feedback (token_id, state, code, seen_at) VALUES (?, 'expired', 2300005, 1768435200)",
                 (tid,))
    conn.execute("UPDATE tokens SET mm_state = 'expired' WHERE id = ?", (tid,))
    run_audit(ws, clock=lambda: 1_768_435_200)
    r = cli("report", "crm", "-o", tmp_path / "crm", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    country = _rows(tmp_path / "crm" / "needs-country.csv")
    # P3's UTC subscriber: no country, and the time zone says nothing
    assert [(x["page_id"], x["timezone"], x["candidates"]) for x in country] == [("P3", "UTC", "unknown")]
    assert res["needs_country"]["rows"] == 1
    optin = _rows(tmp_path / "crm" / "needs-opt-in.csv")
    assert [(x["token_hash"], x["psid_hash"], x["page_id"]) for x in optin] == [(th, short_hash(psid), "P1")]
    assert "expired" in optin[0]["why"]
    text = (tmp_path / "crm" / "needs-country.csv").read_text() + (tmp_path / "crm" / "needs-opt-in.csv").read_text()
    raw = [t for row in conn.execute("SELECT token, psid FROM tokens") for t in row if t]
    assert not any(t in text for t in raw)


def test_cells_cannot_run_as_formulas_or_hide_text(ws, tmp_path, cli):
    build_estate(ws, tmp_path / "in", with_plan=False)
    ws.db.conn.execute("UPDATE tokens SET topic_title = '=HYPERLINK(\"http://x\",\"y\")' WHERE page_id = 'P3'")
    ws.db.conn.execute("UPDATE pages SET name = '@SUM(1)\u202eevil' WHERE page_id = 'P3'")
    assert cli("report", "crm", "-o", tmp_path / "crm").exit_code == 0
    (row,) = _rows(tmp_path / "crm" / "needs-country.csv")
    assert row["topic"] == "'=HYPERLINK(\"http://x\",\"y\")" and row["page_name"] == "'@SUM(1)evil"   # bidi control gone

"""`migrator report ...`: default output under reports/, -o, --json, --page, clear refusals."""

from __future__ import annotations

import json

from _report import build_estate

from migrator.store import open_workspace


def _estate(db_path, tmp_path, **kw):
    ws = open_workspace(db_path)
    try:
        return build_estate(ws, tmp_path / "in", **kw)
    finally:
        ws.close()


def test_default_output_goes_under_reports_in_the_current_directory(cli, db_path, tmp_path, monkeypatch):
    _estate(db_path, tmp_path)
    monkeypatch.chdir(tmp_path)
    for kind in ("audit", "readiness", "execution"):
        r = cli("report", kind)
        assert r.exit_code == 0, r.output
        assert "wrote reports/" in r.output
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert "audit.html" in names and "readiness.html" in names and "readiness.pages.csv" in names
    assert any(n.startswith("execution-p") and n.endswith(".html") for n in names)


def test_out_and_page(cli, db_path, tmp_path):
    _estate(db_path, tmp_path)
    out = tmp_path / "one" / "p3.html"
    r = cli("report", "readiness", "--page", "P3", "-o", out)
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert "No Account &amp; Co" in html and "Give the partner an ad account" in html
    assert (tmp_path / "one" / "p3.pages.csv").read_text().count("\n") == 2  # header + the one page


def test_json_prints_exactly_the_model(cli, db_path, tmp_path):
    _estate(db_path, tmp_path)
    r = cli("report", "readiness", "--json")
    assert r.exit_code == 0
    data = json.loads(r.output)  # exactly one JSON object
    assert data["kind"] == "readiness" and {p["page_id"] for p in data["pages"]} == {"P1", "P2", "P3"}
    r = cli("report", "audit", "--json", "-o", tmp_path / "audit.json")
    assert json.loads(r.output) == {"report": "audit", "written": [str(tmp_path / "audit.json")]}
    assert json.loads((tmp_path / "audit.json").read_text())["kind"] == "audit"


def test_refusals_are_errors_with_hints_not_tracebacks(cli, db_path, tmp_path):
    r = cli("report", "audit")
    assert r.exit_code == 1 and "error:" in r.output  # no workspace at all
    ws = open_workspace(db_path)
    ws.close()
    r = cli("report", "readiness")
    assert r.exit_code == 1 and "no finished audit" in r.output and "hint: run `migrator audit`" in r.output
    _estate(db_path, tmp_path, with_plan=False)
    r = cli("report", "execution")
    assert r.exit_code == 1 and "no plan yet" in r.output and "migrator plan" in r.output
    r = cli("report", "readiness", "--page", "NOPE")
    assert r.exit_code == 1 and "'NOPE' is not in the latest audit" in r.output


def test_help_has_examples(cli):
    for args in (["report", "--help"], ["report", "audit", "--help"], ["report", "readiness", "--help"],
                 ["report", "execution", "--help"]):
        r = cli(*args)
        assert r.exit_code == 0 and "Example" in r.output

"""The demo runs preflight before executing; the readiness report shows each page's preflight state."""

from __future__ import annotations

import json

from click.testing import CliRunner

from migrator.cli import main
from migrator.report import make_report
from migrator.report.build_readiness import build_readiness_report
from _preflight import ACT_BR, PAGE_BR, PAGE_TOKENS, PAGE_US, check, healthy, two_pages


def test_readiness_shows_the_latest_preflight_of_each_page(ws, tmp_path):
    _, path = two_pages(ws, tmp_path)
    assert all(p.preflight is None for p in build_readiness_report(ws).pages)   # never run: nothing said
    a = healthy()
    a.ad_accounts[ACT_BR].funding_source = False
    check(ws, path, a, tokens=PAGE_TOKENS, tmp=tmp_path)
    pages = {p.page_id: p for p in build_readiness_report(ws).pages}
    assert pages[PAGE_US].preflight.state == "pass"
    br = pages[PAGE_BR].preflight
    assert br.state == "fail" and [c.title for c in br.failed] == ["payment method"]
    assert br.failed[0].who == "business admin" and "2300011" in br.failed[0].what
    html = make_report(ws, "readiness", out=tmp_path / "r.html").paths[0].read_text()
    assert "this page cannot send yet" in html and "every set-up check passed" in html
    for t in PAGE_TOKENS.values():
        assert t not in html


def test_demo_runs_preflight_before_executing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATOR_DB", raising=False)
    r = CliRunner().invoke(main, ["demo", "-o", "out", "--json"])
    assert r.exit_code == 0, r.output
    steps = [s["step"] for s in json.loads(r.output)["steps"]]
    assert steps.index("plan") < steps.index("preflight") < steps.index("execute")
    text = next(s["result"] for s in json.loads(r.output)["steps"] if s["step"] == "preflight")
    assert "0 failed" in text and "terms of service" in text
    assert "every set-up check passed" in (tmp_path / "out" / "readiness.html").read_text()

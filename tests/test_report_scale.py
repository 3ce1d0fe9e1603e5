"""A large estate (10,000 pages) gives a readiness file of sensible size: the most urgent
pages in the HTML (and its embedded data), every page in the CSV beside it."""

from __future__ import annotations

import csv
import importlib.util
import json
from datetime import date
from pathlib import Path

from _report import embedded_json

from migrator.audit import run_audit
from migrator.inventory import ingest_content, ingest_pages, ingest_tokens
from migrator.report import build_readiness_report, make_report
from migrator.report.render import HTML_PAGES, html_model

# the benchmark's estate writer (benchmarks/ is not a package)
_spec = importlib.util.spec_from_file_location(
    "_bench_report", Path(__file__).resolve().parents[1] / "benchmarks" / "report.py")
_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench)
write_inputs = _bench.write_inputs


def test_ten_thousand_pages(ws, tmp_path):
    pages, tokens, content = write_inputs(tmp_path, 10_000, 20_000)
    ingest_pages(ws, [pages])
    ingest_tokens(ws, [tokens])
    ingest_content(ws, [content])
    run_audit(ws, as_of=date(2026, 1, 15))
    out = make_report(ws, "readiness", out=tmp_path / "r.html", clock=lambda: 1_768_435_200)
    html_path, csv_path = out.paths
    assert out.model.pages_total == 10_000 == len(out.model.pages)
    assert html_path.stat().st_size < 1_500_000
    html = html_path.read_text(encoding="utf-8")
    assert "most urgent of 10,000 pages" in html
    embedded = json.loads(embedded_json(html))
    assert embedded == html_model(out.model).model_dump(mode="json")
    assert len(embedded["pages"]) == HTML_PAGES and embedded["pages_total"] == 10_000
    assert sum(embedded["statuses"].values()) == 10_000          # the summary covers every page
    rows = list(csv.DictReader(open(csv_path, encoding="utf-8")))
    assert len(rows) == 10_000 and len({r["page_id"] for r in rows}) == 10_000
    # the HTML lists the most urgent first: no listed page is less urgent than an unlisted one
    order = {"blocked": 0, "needs_action": 1, "ready": 2}
    listed, rest = out.model.pages[:HTML_PAGES], out.model.pages[HTML_PAGES:]
    assert max(order[p.status] for p in listed) <= min(order[p.status] for p in rest)
    assert build_readiness_report(ws, page="100042").pages_total == 1

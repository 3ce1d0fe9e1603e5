"""Each report in a real headless Chromium: no console error, no request but the file itself,
the embedded data readable by the page, and a screenshot saved (skips without chromium)."""

from __future__ import annotations

import pytest
from _browser import chromium_path, load_page
from _report import CLOCK, build_estate

from migrator.report import KINDS, make_report

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed")

PROBE = """(() => {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const th = document.querySelector("table.sortable th");
  if (th) { th.click(); th.click(); }          // the sorter runs without error
  return [data.kind, document.querySelectorAll("svg.chart").length, document.title,
          th ? th.getAttribute("aria-sort") : null];
})()"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    from migrator.store import open_workspace

    tmp = tmp_path_factory.mktemp("browser")
    ws = open_workspace(tmp / "ws.db")
    build_estate(ws, tmp / "in")
    out = {k: make_report(ws, k, reports_dir=tmp / "reports", clock=CLOCK).paths[0] for k in KINDS}
    ws.close()
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_report_loads_cleanly_in_chromium(reports, kind, tmp_path):
    html = reports[kind]
    page = load_page(html, expression=PROBE)
    assert page.errors() == []
    assert page.requests == [html.resolve().as_uri()]   # the file itself, nothing else
    data_kind, charts, title, sorted_ = page.value
    assert data_kind == kind
    assert charts >= 1 and title
    assert sorted_ == "descending"
    shot = tmp_path / f"{kind}.png"
    shot.write_bytes(page.screenshot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

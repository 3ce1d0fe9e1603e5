"""Every report readable anywhere, measured in headless Chromium over the DevTools protocol:
at 390 px (a phone) and 1280 px nothing sticks out of the viewport sideways (tables scroll
inside their own box), no text is clipped, no chart label leaves its drawing or sits on another;
printed (A4), page 1 holds the headline, the cards and the key table, and every table's header
cells line up with its values. Screenshots and PDFs are kept (MIGRATOR_SHOTS=DIR keeps them there)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from _browser import chromium_path, load_page
from _layout import LAYOUT, PRINT
from _report import CLOCK, SPEC, build_estate

from migrator.report import make_report
from migrator.report.per_page import write_per_page

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed")

A4_WIDTH_PX = 703        # 210 mm less 2 x 12 mm margins (@page), at 96 px per inch
A4_HEIGHT_PX = 1032      # 297 mm less 2 x 12 mm
VALUE = SPEC.replace('name = "report test"', 'name = "report test"\nvalue_per_subscriber = { amount = 150, currency = "USD" }')


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The three reports and one business file, of the demo (after the cutover) and of the
    small hostile estate before the deadline (countdown shown)."""
    from migrator.demo import run_demo
    from migrator.store import open_workspace

    tmp = tmp_path_factory.mktemp("layout")
    out = {}
    demo = tmp / "demo"
    run_demo(demo, clock=lambda: 1_796_000_000)
    ws = open_workspace(demo / "migration.db")
    for kind in ("audit", "readiness", "execution"):
        out[f"demo-{kind}"] = make_report(ws, kind, out=tmp / f"demo-{kind}.html", clock=CLOCK).paths[0]
    pp = write_per_page(ws, tmp / "per-page", clock=CLOCK)
    out["demo-business"] = pp.files["949326690342998"]
    ws.close()
    ws = open_workspace(tmp / "estate.db")
    build_estate(ws, tmp / "in", spec=VALUE)
    for kind in ("audit", "readiness", "execution"):
        out[f"estate-{kind}"] = make_report(ws, kind, out=tmp / f"estate-{kind}.html", clock=CLOCK).paths[0]
    ws.close()
    return out


def _keep(name: str, data: bytes, tmp_path: Path) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    if os.environ.get("MIGRATOR_SHOTS"):
        Path(os.environ["MIGRATOR_SHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["MIGRATOR_SHOTS"]) / name)
    return path


NAMES = ["demo-audit", "demo-readiness", "demo-execution", "demo-business", "estate-audit", "estate-readiness",
         "estate-execution"]


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("name", NAMES)
def test_nothing_overflows_or_is_clipped(files, name, width, tmp_path):
    page = load_page(files[name], width=width, mobile=width < 500, probes={"layout": LAYOUT})
    assert page.errors() == []
    got = page.probes["layout"]
    assert got["viewport"] == width
    assert got["page_width"] <= width, got["overflow"][:10]     # no sideways scrolling of the page
    assert got["overflow"] == []
    assert got["clipped"] == []
    assert got["spill"] == []                                   # no column spills out of its table
    assert got["svg_clipped"] == []
    assert got["svg_overlap"] == []
    shot = _keep(f"{name}-{width}.png", page.screenshot, tmp_path)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", NAMES)
def test_print_page_one_and_aligned_headers(files, name, tmp_path):
    page = load_page(files[name], width=A4_WIDTH_PX, height=A4_HEIGHT_PX, pdf=True, print_probes={"print": PRINT})
    got = page.print_probes["print"]
    assert got["width"] <= A4_WIDTH_PX, got["wide"]
    assert got["misaligned"] == []
    assert got["h1"] < A4_HEIGHT_PX
    if got["cards"] is not None:
        assert got["cards"] < A4_HEIGHT_PX
    assert got["key_table_top"] is not None and got["key_table"] < A4_HEIGHT_PX, got
    pdf = _keep(f"{name}.pdf", page.pdf, tmp_path).read_bytes()
    assert pdf[:5] == b"%PDF-"
    pages = max(int(n) for n in re.findall(rb"/Count (\d+)", pdf))   # the page tree's root counts every page
    assert 1 <= pages <= (12 if "audit" in name else 20), pages       # the audit PDF was 21 pages of URLs


# the narrowest cell of each approval table and the width of the box it sits in
APPROVAL_CELLS = r"""(() => [...document.querySelectorAll('table.approvals')].map(t => {
  const box = t.closest('div.wide') || t.parentElement;
  const cells = [...t.querySelectorAll('tbody td')].map(td => td.getBoundingClientRect().width);
  return {box: box.clientWidth, scrolls: box.scrollWidth > box.clientWidth + 1, narrowest: Math.min(...cells),
          labelled: [...t.querySelectorAll('tbody td')].every(td => td.dataset.label)};
}))()"""


@pytest.mark.parametrize("name", ["demo-business", "demo-readiness"])
def test_the_approval_table_stacks_or_scrolls_at_phone_width_instead_of_squeezing_words(files, name):
    """At 390 px the four-column table of messages to approve gave each column ~80 px: one word a
    line. Each cell now takes the box's width (stacked, under its label), or the table scrolls."""
    got = load_page(files[name], width=390, mobile=True, probes={"cells": APPROVAL_CELLS}).probes["cells"]
    assert got, "the demo file lists messages to approve"
    for t in got:
        assert t["labelled"]
        assert t["scrolls"] or t["narrowest"] >= 0.9 * t["box"], t
        assert t["narrowest"] >= 200, t
    wide = load_page(files[name], width=1280, probes={"cells": APPROVAL_CELLS}).probes["cells"]
    assert all(not t["scrolls"] and t["narrowest"] < 0.5 * t["box"] for t in wide), wide   # columns on a desk


def test_the_probe_sees_each_kind_of_fault(tmp_path):
    """The measurements above can fail: a page with one fault of each kind is caught on each."""
    bad = tmp_path / "bad.html"
    bad.write_text("""<!doctype html><html><head><meta name="viewport" content="width=device-width">
<style>table{table-layout:fixed;width:200px} td{white-space:nowrap}</style></head><body>
<table><tr><td>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</td><td>b</td></tr></table>
<div style="width:600px">wide</div><p style="overflow:hidden;white-space:nowrap;width:50px">clipped clipped</p>
<svg viewBox="0 0 100 50" width="100"><text x="90" y="20">outside</text><text x="5" y="40">ab</text>
<text x="6" y="40">cd</text></svg></body></html>""", encoding="utf-8")
    got = load_page(bad, width=390, mobile=True, probes={"layout": LAYOUT}).probes["layout"]
    assert got["page_width"] > 390
    assert all(got[k] for k in ("overflow", "clipped", "spill", "svg_clipped", "svg_overlap")), got


def test_a_page_name_that_is_one_long_word_wraps_at_phone_width(tmp_path):
    """Found by review: a page name of one long word (no spaces: a CRM id, a URL, a name
    without spaces) pushed the business file's heading, the summary table and the chart labels
    past 390 px, and the whole page scrolled sideways."""
    from migrator.inventory import ingest_pages
    from migrator.store import open_workspace

    ws = open_workspace(tmp_path / "ws.db")
    build_estate(ws, tmp_path / "in", with_plan=False)
    p = tmp_path / "pages.csv"
    p.write_text("page_id,name,business_country,ad_account_id,currency\n"
                 f"P1,Shop{'X' * 150},US,111,USD\n", encoding="utf-8")
    ingest_pages(ws, [p])
    files = {"business": write_per_page(ws, tmp_path / "pp", clock=CLOCK).files["P1"],
             "readiness": make_report(ws, "readiness", out=tmp_path / "r.html", clock=CLOCK).paths[0]}
    ws.close()
    for name, path in files.items():
        got = load_page(path, width=390, mobile=True, probes={"layout": LAYOUT}).probes["layout"]
        assert got["page_width"] <= 390, (name, got["overflow"][:5])
        assert got["overflow"] == [], name

"""Issue 15.12: text direction. A page name holding U+202E (right-to-left override) or
right-to-left text must not reorder what a report or a CSV shows around it."""

from __future__ import annotations

import csv
import re

from _report import CLOCK, build_estate

from migrator.inventory import ingest_pages
from migrator.outputs import neutralize_bidi
from migrator.report import make_report

RLO_NAME = "Shop \u202eexe.txt"
ARABIC = "متجر ٢٠٢٦"


def _visible(html: str) -> str:
    """The HTML without <script> blocks (the embedded model JSON is not shown)."""
    return re.sub(r"<script\b.*?</script>", "", html, flags=re.S)


def test_bidi_controls_are_made_visible_and_user_text_isolated(ws, tmp_path):
    build_estate(ws, tmp_path / "in", with_plan=False)
    p = tmp_path / "pages.csv"
    p.write_text("page_id,name,business_country,ad_account_id,currency\n"
                 f"P1,{RLO_NAME},US,111,USD\nP2,{ARABIC},US,111,USD\n", encoding="utf-8")
    ingest_pages(ws, [p])
    html_path, csv_path = make_report(ws, "readiness", out=tmp_path / "r.html", clock=CLOCK).paths
    html = _visible(html_path.read_text(encoding="utf-8"))
    assert "\u202e" not in html
    assert "<bdi>Shop [U+202E]exe.txt</bdi>" in html
    assert f"<bdi>{ARABIC}</bdi>" in html
    assert "unicode-bidi: isolate" in html
    rows = {r["page_id"]: r for r in csv.DictReader(open(csv_path, encoding="utf-8"))}
    assert "\u202e" not in rows["P1"]["name"] and "exe.txt" in rows["P1"]["name"]  # stripped
    assert rows["P2"]["name"] == ARABIC  # right-to-left text itself is kept


def test_neutralize_bidi_rules():
    assert neutralize_bidi("a\u202eb\u2066c") == "a[U+202E]b[U+2066]c"
    assert neutralize_bidi("שלום\u200f") == "שלום\u200f"  # RLM is legitimate in HTML, kept


def test_per_page_index_makes_bidi_controls_visible_and_isolates_names(ws, tmp_path):
    """The index of `report readiness --per-page` is hand-built HTML: it must treat page names
    as the reports do (found by review: a name with U+202E reached the index raw)."""
    from migrator.report.per_page import write_per_page

    build_estate(ws, tmp_path / "in", with_plan=False)
    p = tmp_path / "pages.csv"
    p.write_text("page_id,name,business_country,ad_account_id,currency\n"
                 f"P1,{RLO_NAME},US,111,USD\nP2,{ARABIC},US,111,USD\n", encoding="utf-8")
    ingest_pages(ws, [p])
    res = write_per_page(ws, tmp_path / "pp", clock=CLOCK)
    index = res.index.read_text(encoding="utf-8")
    assert "\u202e" not in index
    assert "<bdi>Shop [U+202E]exe.txt</bdi>" in index
    assert f"<bdi>{ARABIC}</bdi>" in index

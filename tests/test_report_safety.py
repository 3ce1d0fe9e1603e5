"""Every report escapes inventory text, shows no raw token or PSID, fetches nothing, and
carries its model as JSON that parses back to the model."""

from __future__ import annotations

import json
import re

import pytest
from _report import CLOCK, EVIL, EVIL_TOPIC, build_estate, embedded_json, external_refs, parse_tags, secrets

from migrator.report import KINDS, build_report, make_report, render_report


@pytest.fixture
def estate(ws, tmp_path):
    build_estate(ws, tmp_path / "in")
    return ws


@pytest.fixture
def written(estate, tmp_path):
    """{kind: [paths]} of the three reports written with their default names."""
    return {k: make_report(estate, k, reports_dir=tmp_path / "reports", clock=CLOCK).paths for k in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_inventory_text_is_escaped(estate, kind):
    html = render_report(build_report(estate, kind, clock=CLOCK))
    tags = parse_tags(html)
    # only our two script elements (the data and the sorter) and no injected element at all
    assert [t for t, _ in tags.tags if t == "script"] == ["script", "script"]
    assert not [t for t, _ in tags.tags if t == "img"]
    for raw in ('<script>alert("x")', "</script><img", "<script>alert(2)", "<b>DE</b>", "<script>too long"):
        assert raw not in html
    assert "&lt;script&gt;alert(" in html  # the page name (campaign names carry it too), shown escaped
    if kind == "audit":
        assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html  # the topic


@pytest.mark.parametrize("kind", KINDS)
def test_no_raw_token_or_psid_anywhere(estate, written, kind, tmp_path):
    raw = secrets(estate)
    assert len(raw) > 20
    for path in written[kind]:  # the HTML and the CSV beside it
        text = path.read_text(encoding="utf-8")
        leaked = [s for s in raw if s in text]
        assert leaked == [], f"{path.name} shows {leaked[:3]}"
    model = make_report(estate, kind, out=tmp_path / f"{kind}.json", as_json=True, clock=CLOCK).paths[0]
    text = model.read_text(encoding="utf-8")
    assert [s for s in raw if s in text] == []


@pytest.mark.parametrize("kind", KINDS)
def test_no_external_url_is_fetched(written, kind):
    html = written[kind][0].read_text(encoding="utf-8")
    assert external_refs(html) == []
    # rule sources are shown, as text
    assert "https://developers.facebook.com" in html
    # belt and braces over the parser: no src/href followed by a URL scheme anywhere in the raw text
    assert re.search(r"(?i)\b(?:src|href)\s*=\s*[\"']?\s*(?:[a-z][a-z0-9+.-]*:)?//", html) is None


@pytest.mark.parametrize("kind", KINDS)
def test_embedded_json_parses_and_equals_the_model(estate, kind):
    model = build_report(estate, kind, clock=CLOCK)
    html = render_report(model)
    raw = embedded_json(html)
    assert "<" not in raw and ">" not in raw and "&" not in raw
    assert json.loads(raw) == model.model_dump(mode="json")
    assert type(model).model_validate(json.loads(raw)) == model


def test_hostile_strings_survive_the_round_trip(estate):
    """Escaping must not lose anything: the embedded data has the page name exactly."""
    model = build_report(estate, "readiness", clock=CLOCK)
    data = json.loads(embedded_json(render_report(model)))
    assert EVIL in [p["name"] for p in data["pages"]]
    audit = json.loads(embedded_json(render_report(build_report(estate, "audit", clock=CLOCK))))
    assert any(EVIL_TOPIC == c["topic_title"] for c in audit["content_rows"])


def test_csv_beside_the_readiness_report_defuses_formulas(ws, tmp_path):
    import csv

    from migrator.inventory import ingest_pages

    build_estate(ws, tmp_path / "in", with_plan=False)
    p = tmp_path / "more.csv"
    p.write_text("page_id,name,business_country,ad_account_id,currency\nP1,=HYPERLINK(\"x\"),US,111,USD\n",
                 encoding="utf-8")
    ingest_pages(ws, [p])
    out = make_report(ws, "readiness", out=tmp_path / "r.html", clock=CLOCK).paths
    rows = list(csv.DictReader(open(out[1], encoding="utf-8")))
    assert {r["name"] for r in rows if r["page_id"] == "P1"} == {"'=HYPERLINK(\"x\")"}


def test_per_page_files_and_index_escape_inventory_text(estate, tmp_path):
    from migrator.report.per_page import write_per_page

    res = write_per_page(estate, tmp_path / "pp", clock=CLOCK)
    names = sorted(p.name for p in (tmp_path / "pp").iterdir())
    assert len(res.files) == 3 and "index.html" in names
    assert all(re.fullmatch(r"[a-z0-9-]+-[A-Za-z0-9_]+\.html", n) for n in names if n != "index.html")
    raw = secrets(estate)
    for path in [res.index, *res.files.values()]:
        html = path.read_text(encoding="utf-8")
        tags = parse_tags(html)
        assert not [t for t, _ in tags.tags if t == "img"]
        assert '<script>alert("x")' not in html and "<b>DE</b>" not in html
        assert not any(s in html for s in raw)
        # only sibling files and anchors: nothing that leaves the directory or the machine
        for ref in external_refs(html):
            assert re.fullmatch(r"<a href=[a-z0-9-]+-[A-Za-z0-9_]+\.html>", ref), ref
    p1 = res.files["P1"].read_text(encoding="utf-8")
    assert json.loads(embedded_json(p1))["pages"][0]["name"] == EVIL


def test_output_that_is_not_a_directory_is_a_clear_error(estate, tmp_path, cli):
    f = tmp_path / "file.html"
    f.write_text("mine")
    for args in (["readiness", "--per-page", "-o", f], ["crm", "-o", f]):
        r = cli("report", *args)
        assert r.exit_code == 1 and "not a directory" in r.output and "Traceback" not in r.output
    assert f.read_text() == "mine"

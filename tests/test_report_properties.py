"""Properties of the escaping layers: any text from the inventory stays text."""

from __future__ import annotations

import json

from _report import parse_tags
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.report.models import Term
from migrator.report.render import embed_json
from migrator.report.common import money
from migrator.report.svg import stacked_bars, timeline
from _hyp import examples

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60) | st.sampled_from(
    ["</script>", "<!--", "<script>", "]]>", "\u2028", "&amp;", "\"'><img src=x>"])


@given(st.lists(text, max_size=5))
@settings(max_examples=examples(200), deadline=None)
def test_embedded_json_has_no_markup_and_round_trips(texts):
    from migrator.report.models import Provenance

    prov = Provenance(migrator_version="t", generated_at="x", as_of=None, audit_run_id=None, workspace="w",
                      rules_version=None, rules_fingerprint=None, rules_note=None, rules=[], plan_id=None,
                      plan_fingerprint=None)

    # any model will do: the provenance carries free text (and the glossary terms below)
    model = prov.model_copy(update={"workspace": "".join(texts),
                                    "rules_note": json.dumps([Term(term=t, meaning=t).model_dump() for t in texts])})
    raw = str(embed_json(model))
    assert not set("<>&\u2028\u2029") & set(raw)
    assert json.loads(raw) == model.model_dump(mode="json")


@given(st.lists(st.tuples(text, st.lists(st.integers(0, 10**6), min_size=2, max_size=2)), max_size=6), text)
@settings(max_examples=examples(150), deadline=None)
def test_svg_labels_never_make_elements(rows, title):
    svg = str(stacked_bars(title, rows, [("a<b", "s1"), ("c&d", "s2")]))
    tags = {t for t, _ in parse_tags(svg).tags}
    assert tags <= {"svg", "title", "rect", "text"}
    svg = str(timeline(title, [("2026-01-01", title), ("2026-02-10", "x")], "2026-01-15"))
    assert {t for t, _ in parse_tags(svg).tags} <= {"svg", "title", "line", "circle", "text"}


@given(st.integers(-10**12, 10**12), st.sampled_from(["USD", "JPY", "IDR", "EUR", "vnd", ""]))
def test_money_is_exact(minor, cur):
    out = money(minor, cur)
    digits = out.rsplit(" ", 1)[-1].replace(",", "")
    scale = {"JPY": 0, "VND": 0, "IDR": 0}.get(cur.upper(), 2)
    assert round(float(digits) * 10 ** scale) == minor

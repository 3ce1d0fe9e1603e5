"""`migrator audit` on the sample estate matches verdict counts derived from its ground truth.

The expected counts are derived here from `truth.jsonl` (status, region_class) and
`pages.csv` (business_country) with the product's rules written out by hand, not with the
audit's code; the estate goes in through the CLI (`migrator ingest`).
"""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from migrator.store import open_workspace

sample = pytest.importorskip("migrator.sample")

MM_BUSINESS = set("AU BR CL CO HK IN ID IL MY MX NZ PE PH SA SG TW TH AE US VN".split())


def expected_verdict(truth: dict, business: str | None, *, after_cutoff: bool) -> str:
    """PRODUCT.md "Verdicts" for the default reading (recipient geo decides, EU = EU-27)."""
    if truth["status"] == "stopped":
        return "opted_out"
    rc = truth["region_class"]
    if rc == "mm_excluded":
        return "stay_on_rn"  # excluded from MM = exactly where RN survives
    if business in MM_BUSINESS:
        return "migrate" if rc == "mm_allowed" else "review"
    # MM is closed to this business: RN is the only path and ends at the cut-off, so the
    # verdict is the same on both sides of the date (issue 16.2)
    if business and rc == "mm_allowed":
        return "blocked"
    return "review"  # unknown business, or a region that might be either side


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    sample.generate_sample(out, tokens=1500, pages=12, seed=11)
    return out


@pytest.mark.parametrize("as_of, after", [("2026-01-15", False), ("2026-03-01", True)])
def test_audit_on_the_sample_matches_its_ground_truth(cli, db_path, estate, as_of, after):
    pages = {r["page_id"]: (r["business_country"] or None)
             for r in csv.DictReader(open(estate / "pages.csv", encoding="utf-8"))}
    truth = [json.loads(line) for line in open(estate / "truth.jsonl", encoding="utf-8")]
    want = Counter(expected_verdict(t, pages.get(t["page_id"]), after_cutoff=after) for t in truth)
    persons = len({(t["page_id"], t["psid"]) for t in truth})

    assert cli("ingest", "pages", estate / "pages.csv").exit_code == 0
    token_files = [estate / n for n in ("tokens.csv", "tokens_listing.jsonl", "webhooks.jsonl")
                   if (estate / n).exists()]
    cli("ingest", "tokens", *token_files)  # the sample's malformed rows make this exit non-zero
    content_files = [estate / n for n in ("content_sends.jsonl", "content_library.json")
                     if (estate / n).exists()]
    if content_files:
        cli("ingest", "content", *content_files)
    out = cli("audit", "--as-of", as_of, "--json")
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)

    assert got["tokens"] == len(truth)
    assert got["recipients"] == persons
    assert got["verdicts"] == {v: want.get(v, 0) for v in
                               ("migrate", "stay_on_rn", "blocked", "opted_out", "review")}
    # content: every ingested message is counted once, under the converter's outcome
    ws = open_workspace(db_path)
    outcomes = Counter(r["outcome"] for r in ws.db.query("SELECT outcome FROM contents"))
    ws.close()
    assert sum(got["contents"].values()) == sum(outcomes.values())
    for k in ("exact", "lossy", "needs_edit", "unsupported"):
        assert got["contents"][k] == outcomes.get(k, 0)
    # the sample covers every verdict after the cut-off
    if after:
        assert all(got["verdicts"][v] > 0 for v in got["verdicts"])

"""Ingest the sample estate through the CLI: the workspace must agree with truth.jsonl.

Every record is counted as the manifest predicts (accepted, duplicate, ignored, rejected),
the malformed lines are rejected with their line numbers, and the order in which the
sources are ingested does not change the final state.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from migrator.cli import main
from migrator.regions import zone_tables
from migrator.sample import generate_sample


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    out = tmp_path_factory.mktemp("estate")
    return out, generate_sample(out, tokens=800, pages=12, seed=21)


def _run(db, *args):
    r = CliRunner().invoke(main, ["--db", str(db), *map(str, args)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.output) if "--json" in args else r.output


def _ingest(db, out, token_files):
    _run(db, "ingest", "pages", out / "pages.csv")
    summary = _run(db, "ingest", "tokens", *[out / f for f in token_files], "--json")
    content = _run(db, "ingest", "content", out / "content_sends.jsonl",
                   out / "content_library.json", "--json")
    return summary, content


def _state(db):
    con = sqlite3.connect(db)
    try:
        return {r[0]: r[1:] for r in con.execute(
            "SELECT token, status, timezone, country, psid, page_id, topic_title FROM tokens")}
    finally:
        con.close()


@pytest.fixture(scope="module")
def ingested(estate, tmp_path_factory):
    out, m = estate
    db = tmp_path_factory.mktemp("ws") / "ws.db"
    summary, content = _ingest(db, out, ["webhooks.jsonl", "tokens.csv", "tokens_listing.jsonl"])
    return db, summary, content


def test_tokens_table_agrees_with_truth(estate, ingested):
    out, _ = estate
    db, _, _ = ingested
    state = _state(db)
    truth = [json.loads(line) for line in (out / "truth.jsonl").read_text().splitlines()]
    assert len(state) == len(truth)
    known = zone_tables().by_lower
    for t in truth:
        # a zone tzdata does not know (the sample's Mars/Olympus_Mons) is dropped with a warning
        zone = known.get(t["timezone"].lower()) if t["timezone"] else None
        assert state[t["token"]] == (t["status"], zone, t["explicit_country"], t["psid"],
                                     t["page_id"], t["topic_title"]), t


def test_every_record_counted_as_the_manifest_says(estate, ingested):
    out, m = estate
    _, summary, _ = ingested
    files = {f["path"].rsplit("/", 1)[-1]: f for f in summary["files"]}
    wh, wm = files["webhooks.jsonl"], m.file("webhooks.jsonl")
    assert wh["accepted"] == wm.counts["rn_events"]
    assert wh["duplicates"] == wm.counts["duplicate_events"]
    assert wh["ignored"] == wm.counts["ignored_events"]
    assert wh["rejected"] == 1
    tc, tm = files["tokens.csv"], m.file("tokens.csv")
    assert tc["accepted"] == tm.records and tc["rejected"] == len(tm.malformed) == 5
    tl, lm = files["tokens_listing.jsonl"], m.file("tokens_listing.jsonl")
    assert tl["accepted"] == lm.records and tl["rejected"] == 1


def test_malformed_lines_rejected_with_line_numbers(estate, ingested):
    out, m = estate
    db, _, _ = ingested
    con = sqlite3.connect(db)
    rejects = {}
    for path, line, reason in con.execute("SELECT path, line, reason FROM rejects WHERE severity != 'warning'"):
        rejects.setdefault(path.rsplit("/", 1)[-1], {})[line] = reason
    # the sample's unknown zones (America/Nowhere, Mars/Olympus_Mons) are warnings, records kept
    warned = {r[0] for r in con.execute("SELECT value FROM rejects WHERE severity = 'warning'")}
    con.close()
    assert warned <= {"America/Nowhere", "Mars/Olympus_Mons"}
    for name in ("tokens.csv", "tokens_listing.jsonl", "webhooks.jsonl"):
        assert set(rejects[name]) == {x.line for x in m.file(name).malformed}, name
    by_kind = {x.kind: rejects["tokens.csv"][x.line] for x in m.file("tokens.csv").malformed}
    assert "token" in by_kind["missing_token"]
    assert "page_id" in by_kind["bad_page_id"] and "page_id" in by_kind["negative_page_id"]
    assert "text-direction" in by_kind["token_bidi"]
    assert "columns" in by_kind["wrong_column_count"]


def test_content_deduplicated(estate, ingested):
    out, m = estate
    db, _, content = ingested
    con = sqlite3.connect(db)
    n = con.execute("SELECT count(*) FROM contents").fetchone()[0]
    con.close()
    assert n == m.file("content_library.json").counts["distinct_messages_with_sends"]
    sends = next(f for f in content["files"] if f["path"].endswith("content_sends.jsonl"))
    assert sends["duplicates"] == m.file("content_sends.jsonl").counts["repeated_lines"]
    assert content["rejected"] == 0


def test_ingest_order_does_not_matter_and_reingest_is_a_no_op(estate, ingested, tmp_path):
    out, _ = estate
    db, _, _ = ingested
    other = tmp_path / "other.db"
    _ingest(other, out, ["tokens_listing.jsonl", "tokens.csv", "webhooks.jsonl"])
    assert _state(other) == _state(db)
    again = _run(other, "ingest", "tokens", out / "webhooks.jsonl", out / "tokens.csv",
                 out / "tokens_listing.jsonl", "--json")
    assert again["accepted"] == 0
    assert _state(other) == _state(db)


def test_benchmark_writers_ingest_without_rejects(tmp_path):
    from migrator.sample import write_tokens_csv, write_webhooks_jsonl

    write_tokens_csv(tmp_path / "t.csv", 3000, seed=8)
    info = write_webhooks_jsonl(tmp_path / "w.jsonl", 3000, seed=8)
    s = _run(tmp_path / "ws.db", "ingest", "tokens", tmp_path / "t.csv", tmp_path / "w.jsonl", "--json")
    csv_file, wh_file = s["files"]
    assert (csv_file["accepted"], csv_file["rejected"]) == (3000, 0)
    assert wh_file["rejected"] == 0 and wh_file["ignored"] == 0
    assert wh_file["duplicates"] == info["duplicates"]
    assert wh_file["accepted"] + wh_file["duplicates"] == info["events"]


@pytest.mark.parametrize("seed,pages,tokens", [(1, 1, 100), (2, 3, 250), (99, 30, 400)])
def test_truth_holds_for_other_seeds_and_sizes(tmp_path, seed, pages, tokens):
    out = tmp_path / "est"
    m = generate_sample(out, tokens=tokens, pages=pages, seed=seed)
    db = tmp_path / "ws.db"
    summary, _ = _ingest(db, out, ["tokens.csv", "webhooks.jsonl", "tokens_listing.jsonl"])
    state = _state(db)
    truth = [json.loads(line) for line in (out / "truth.jsonl").read_text().splitlines()]
    assert len(state) == len(truth) == tokens
    for t in truth:
        assert state[t["token"]][:3] == (t["status"], t["timezone"], t["explicit_country"]), t
    assert summary["rejected"] == sum(len(f.malformed) for f in m.files)

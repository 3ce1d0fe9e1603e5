"""`migrator ingest ...` through the CLI: JSON shape, exit codes, no tracebacks."""

import json


def test_ingest_tokens_json_shape(cli, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("page_id,token\n1,a\n1,a\n1,\n")
    r = cli("ingest", "tokens", p, "--json")
    assert r.exit_code == 0
    data = json.loads(r.output)
    assert {k: data[k] for k in ("accepted", "duplicates", "ignored", "rejected")} == \
        {"accepted": 1, "duplicates": 1, "ignored": 0, "rejected": 1}
    assert data["files"][0]["path"] == str(p) and data["files"][0]["records"] == 3


def test_strict_exit_1_names_line(cli, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("page_id,token\n1,a\n1,\n")
    r = cli("ingest", "tokens", "--strict", p)
    assert r.exit_code == 1
    assert f"{p}:3" in r.output and "Traceback" not in r.output


def test_missing_file_and_bad_option(cli, tmp_path):
    r = cli("ingest", "tokens", tmp_path / "nope.csv")
    assert r.exit_code == 1 and "not found" in r.output
    r = cli("ingest", "tokens", "--format", "xml", tmp_path / "nope.csv")
    assert r.exit_code == 2


def test_pages_and_content_commands(cli, tmp_path):
    pages = tmp_path / "p.csv"
    pages.write_text("page_id,name,business_country,ad_account_id,currency\n1,A,US,1,USD\n")
    assert json.loads(cli("ingest", "pages", pages, "--json").output)["accepted"] == 1
    content = tmp_path / "c.jsonl"
    content.write_text('{"page_id": "1", "key": "k", "message": {"text": "hi"}}\n')
    assert json.loads(cli("ingest", "content", content, "--json").output)["accepted"] == 1


def test_help_has_examples(cli):
    for cmd in (["ingest", "tokens"], ["ingest", "pages"], ["ingest", "content"]):
        r = cli(*cmd, "--help")
        assert r.exit_code == 0 and "Example" in r.output


def test_large_file_through_worker_processes_equals_one_process(cli, tmp_path):
    """A file over two chunks (8 MB) goes through worker processes; --workers 0 does not."""
    import sqlite3

    from migrator.sample import write_tokens_csv

    p = tmp_path / "big.csv"
    write_tokens_csv(p, 62_000)
    assert p.stat().st_size > 8 << 20
    results = []
    for workers in ("2", "0"):
        db = tmp_path / f"w{workers}.db"
        r = cli("--db", db, "ingest", "tokens", p, "--workers", workers, "--json")
        assert r.exit_code == 0, r.output
        counts = {k: v for k, v in json.loads(r.output).items() if k != "files"}
        with sqlite3.connect(db) as c:
            state = c.execute("SELECT count(*), sum(status = 'stopped'), count(DISTINCT token_hash),"
                              " max(created_at), count(DISTINCT psid) FROM tokens").fetchone()
        results.append((counts, state))
    assert results[0] == results[1]
    assert results[0][0]["accepted"] > 60_000

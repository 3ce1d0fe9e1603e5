"""Issue 15, inputs: files as real tools write them either ingest correctly or fail loudly.

Table-driven, one table per input format (tokens CSV, token listing JSONL, webhooks, pages
CSV, content), through the CLI with a real workspace: each case asserts the exit code, the
counts, the rows of `rejects` (severity, line, what it names) and that the good records
around each bad one are kept. Fixtures are built the way the tools write them: Excel "CSV
UTF-8" (BOM, `;`, CRLF), Excel "CSV (Windows)" (cp1252, `;`), Excel "Unicode text" (UTF-16
LE with BOM, tabs), a CRM export (`|`, quoted multi-line notes).
"""

from __future__ import annotations

import json
import sqlite3

import pytest

HEADER = ["page_id", "token", "topic_title", "token_expiry", "last_sent_at", "frequency"]
GOOD = [["101", "tokA", "Ofertas de verão", "1767225600", "2025-06-01T10:00:00Z", "WEEKLY"],
        ["102", "tokB", "Café crème", "2026-01-01", "", ""]]


def _rows(sep: str, rows, eol: str = "\r\n") -> str:
    return eol.join(sep.join(r) for r in [HEADER, *rows]) + eol


def _rejects(db_path):
    con = sqlite3.connect(db_path)
    try:
        return con.execute("SELECT severity, line, field, value, reason FROM rejects"
                           " ORDER BY line, severity").fetchall()
    finally:
        con.close()


def _titles(db_path):
    con = sqlite3.connect(db_path)
    try:
        return dict(con.execute("SELECT token, topic_title FROM tokens"))
    finally:
        con.close()


# --- tokens CSV: (id, file bytes, extra args, exit, accepted, rejected, warnings, checks) ---

def _excel_utf8():  # Excel "CSV UTF-8" in a ; locale: BOM, semicolons, CRLF
    return b"\xef\xbb\xbf" + _rows(";", GOOD).encode("utf-8")


def _excel_windows():  # Excel "CSV (Windows)": cp1252, semicolons, CRLF
    return _rows(";", GOOD).encode("cp1252")


def _unicode_text():  # Excel "Unicode text": UTF-16 LE with BOM, tab separated
    return _rows("\t", GOOD).encode("utf-16")


def _crm_pipe():  # a CRM export: |, every field quoted, a multi-line note
    rows = [[f'"{c}"' for c in r] for r in GOOD]
    rows[0][2] = '"Ofertas\r\nde verão | linha 2"'
    return _rows("|", rows).encode("utf-8")


CSV_CASES = [
    ("excel-csv-utf8-bom-semicolon", _excel_utf8(), [], 0, 2, 0, 0, {"tokA": "Ofertas de verão"}),
    ("excel-windows-cp1252-refused", _excel_windows(), [], 1, 0, 0, 0, None),
    ("excel-windows-cp1252-with-encoding", _excel_windows(), ["--encoding", "cp1252"], 0, 2, 0, 0,
     {"tokB": "Café crème"}),
    ("utf16-unicode-text-tabs", _unicode_text(), [], 0, 2, 0, 0, {"tokA": "Ofertas de verão"}),
    ("utf16-without-bom-refused", _rows("\t", GOOD).encode("utf-16-le"), [], 1, 0, 0, 0, None),
    ("crm-pipe-multiline", _crm_pipe(), [], 0, 2, 0, 0, {"tokA": "Ofertas\r\nde verão | linha 2"}),
    ("explicit-delimiter", _rows(";", GOOD).encode(), ["--delimiter", ";"], 0, 2, 0, 0, None),
    # quoting: one stray quote no longer swallows every later row
    ("unclosed-quote", b'page_id,token\n1,"111\n1,222\n1,333\n1,444\n', [], 0, 3, 1, 0, None),
    ("quote-past-64kb", b'page_id,token\n1,"x' + b"y" * 70_000 + b'\n1,222\n1,333\n', [], 0, 2, 1, 0, None),
    # a bad optional field keeps the subscriber, every bad field named
    ("optional-warnings", _rows(",", [["101", "tokA", "T", "soon", "-1", "HOURLY"], GOOD[1]]).encode(),
     [], 0, 2, 0, 3, None),
    # values that are not what they claim
    ("bad-page-ids", _rows(",", [["\uff11\uff12", "t1", "", "", "", ""], ["0", "t2", "", "", "", ""],
                                 ["-5", "t3", "", "", "", ""], ["<script>", "t4", "", "", "", ""],
                                 ["1\x002", "t5", "", "", "", ""], GOOD[0]]).encode(), [], 0, 1, 5, 0, None),
    ("token-bidi-and-control", _rows(",", [["101", "ab\u202ecd", "", "", "", ""],
                                           ["101", "ab\x07cd", "", "", "", ""], GOOD[0]]).encode(),
     [], 0, 1, 2, 0, None),
    ("times-out-of-range", _rows(",", [["101", "t1", "", "0001-01-01T00:00:00Z", "253402300800", ""],
                                       ["101", "t2", "", "99999999999999999999999", "", ""]]).encode(),
     [], 0, 2, 0, 3, None),
    ("both-required-bad", _rows(",", [["x-1", "", "", "bad", "", ""], GOOD[0]]).encode(), [], 0, 1, 1, 0, None),
    ("nothing-accepted", _rows(",", [["0", "a", "", "", "", ""], ["", "b", "", "", "", ""]]).encode(),
     [], 1, 0, 2, 0, None),
]


@pytest.mark.parametrize("name,data,args,code,accepted,rejected,warnings,titles", CSV_CASES,
                         ids=[c[0] for c in CSV_CASES])
def test_tokens_csv_table(cli, db_path, tmp_path, name, data, args, code, accepted, rejected,
                          warnings, titles):
    p = tmp_path / f"{name}.csv"
    p.write_bytes(data)
    r = cli("ingest", "tokens", p, *args, "--json")
    assert "Traceback" not in r.output
    assert r.exit_code == code, r.output
    if code == 1 and not rejected:  # refused as a whole: one clear line, nothing half-read
        assert "error:" in r.output
        if "cp1252" in name:
            assert f"{p}:2:" in r.output and "byte offset" in r.output and "--encoding cp1252" in r.output
        if "without-bom" in name:
            assert "--encoding utf-16-le" in r.output
        return
    data = json.loads(r.stdout.splitlines()[0])
    f = data["files"][0]
    assert (f["accepted"], f["rejected"], f["warnings"]) == (accepted, rejected, warnings), f
    assert f["records"] == f["accepted"] + f["duplicates"] + f["ignored"] + f["rejected"]
    rej = _rejects(db_path)
    assert sum(1 for x in rej if x[0] == "reject") == rejected
    assert sum(1 for x in rej if x[0] == "warning") == warnings
    if titles:
        got = _titles(db_path)
        for token, title in titles.items():
            assert got[token] == title
    if name == "unclosed-quote":
        assert rej[0][:2] == ("reject", 2) and "never closed" in rej[0][4]
        assert set(_titles(db_path)) == {"222", "333", "444"}
    if name == "quote-past-64kb":
        assert rej[0][:2] == ("reject", 2) and set(_titles(db_path)) == {"222", "333"}
    if name == "optional-warnings":
        assert {(x[2], x[3]) for x in rej} == {("token_expiry", "soon"), ("last_sent_at", "-1"),
                                               ("frequency", "HOURLY")}
        assert all(x[1] == 2 and "kept the record" in x[4] for x in rej)
    if name == "both-required-bad":
        assert "page_id" in rej[0][4] and "missing token" in rej[0][4]
    if name == "times-out-of-range":
        assert {x[2] for x in rej} == {"token_expiry", "last_sent_at"}
        assert sum("2004-01-01 .. 2100-01-01" in x[4] for x in rej) == 2  # year 1, 1978
    if name == "nothing-accepted":
        assert "nothing accepted" in r.output and "2 records rejected" in r.output


def test_latin1_file_never_ingests_replacement_characters(cli, db_path, tmp_path):
    """The bug: exit 0 and every accented letter replaced by U+FFFD."""
    p = tmp_path / "latin1.csv"
    data = "page_id,token,topic_title\n1,a,Promoção\n".encode("latin-1")
    p.write_bytes(data)
    r = cli("ingest", "tokens", p)
    at = data.index("ç".encode("latin-1"))
    assert r.exit_code == 1 and f"byte e7 at byte offset {at} " in r.output
    assert f"{p}:2:" in r.output
    r = cli("ingest", "tokens", p, "--encoding", "latin-1")
    assert r.exit_code == 0 and _titles(db_path) == {"a": "Promoção"}
    assert cli("ingest", "tokens", p, "--encoding", "klingon").exit_code == 2


def test_gzip_and_late_bad_byte_are_located(cli, tmp_path):
    import gzip

    body = "page_id,token\n" + "".join(f"1,t{i}\n" for i in range(5000))
    p = tmp_path / "t.csv.gz"
    p.write_bytes(gzip.compress(body.encode() + b"1,caf\xe9\n"))
    r = cli("ingest", "tokens", p)
    assert r.exit_code == 1 and f"{p}:5002:" in r.output and "byte offset" in r.output


def test_reingest_does_not_double_rejects(cli, db_path, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("page_id,token,frequency\n1,a,HOURLY\n0,b,\n1,c,\n")
    assert cli("ingest", "tokens", p).exit_code == 0
    first = len(_rejects(db_path))
    assert first == 2
    assert cli("ingest", "tokens", p).exit_code == 0
    assert len(_rejects(db_path)) == first


# --- token listing JSONL -------------------------------------------------------------------

def _item(token="T1", **kw):
    item = {"notification_messages_token": token, "page_id": "101",
            "notification_messages_timezone": "America/Sao_Paulo", "token_expiry_timestamp": 2145916800000}
    item.update(kw)
    return json.dumps(item)


LISTING_CASES = [
    ("clean", [_item("A"), _item("B")], 0, 2, 0, 0),
    ("bad-optional-kept", [_item("A", token_expiry_timestamp=-1, user_token_status="MAYBE"), _item("B")],
     0, 2, 0, 2),
    ("bad-page-and-token", [_item("a\u202eb", page_id="\uff11"), _item("B")], 0, 1, 1, 0),
    ("nested-1000-deep", ["[" * 1000 + "]" * 1000, _item("B")], 0, 1, 1, 0),
    ("huge-int", [_item("A", creation_timestamp=2**70), _item("B")], 0, 2, 0, 1),
    ("nothing-good", ["{not json", _item("", page_id="0")], 1, 0, 2, 0),
]


@pytest.mark.parametrize("name,lines,code,accepted,rejected,warnings", LISTING_CASES,
                         ids=[c[0] for c in LISTING_CASES])
def test_token_listing_table(cli, db_path, tmp_path, name, lines, code, accepted, rejected, warnings):
    p = tmp_path / f"{name}.jsonl"
    p.write_text("\n".join(lines) + "\n")
    r = cli("ingest", "tokens", "--format", "jsonl", p, "--json")
    assert "Traceback" not in r.output
    assert r.exit_code == code, r.output
    f = json.loads(r.stdout.splitlines()[0])["files"][0]
    assert (f["accepted"], f["rejected"], f["warnings"]) == (accepted, rejected, warnings)
    assert f["records"] == f["accepted"] + f["duplicates"] + f["ignored"] + f["rejected"]
    if name == "bad-page-and-token":
        reason = _rejects(db_path)[0][4]
        assert "page_id" in reason and "text-direction" in reason


# --- webhooks ------------------------------------------------------------------------------

def _hook(token="W1", ts=1_760_000_000_000, page="101", **optin):
    body = {"type": "notification_messages", "notification_messages_token": token, "title": "Deals"}
    body.update(optin)
    return json.dumps({"object": "page", "entry": [{"id": page, "time": ts, "messaging": [
        {"sender": {"id": "55"}, "recipient": {"id": page}, "timestamp": ts, "optin": body}]}]})


WEBHOOK_CASES = [
    ("clean", [_hook("A"), _hook("B")], 0, 2, 0, 0),
    ("time-year-1978-and-negative", [_hook("A", ts=253402300800), _hook("B", ts=-1), _hook("C")],
     0, 1, 2, 0),
    ("bad-optional-kept", [_hook("A", notification_messages_frequency="HOURLY",
                                 token_expiry_timestamp="never"), _hook("B")], 0, 2, 0, 2),
    ("page-not-digits", [_hook("A", page="<script>"), _hook("B")], 0, 1, 1, 0),
    ("nested-1000-deep", ['{"entry": ' + "[" * 1000 + "]" * 1000 + "}", _hook("B")], 0, 1, 1, 0),
    ("nothing-good", [_hook("A", ts=5)], 1, 0, 1, 0),
]


@pytest.mark.parametrize("name,lines,code,accepted,rejected,warnings", WEBHOOK_CASES,
                         ids=[c[0] for c in WEBHOOK_CASES])
def test_webhooks_table(cli, tmp_path, name, lines, code, accepted, rejected, warnings):
    p = tmp_path / f"{name}.jsonl"
    p.write_text("\n".join(lines) + "\n")
    r = cli("ingest", "tokens", "--format", "webhooks", p, "--json")
    assert "Traceback" not in r.output
    assert r.exit_code == code, r.output
    f = json.loads(r.stdout.splitlines()[0])["files"][0]
    assert (f["accepted"], f["rejected"], f["warnings"]) == (accepted, rejected, warnings)


def test_webhook_document_nested_1000_deep_is_one_clear_line(cli, tmp_path):
    p = tmp_path / "deep.json"
    p.write_text("[\n" + "[" * 1000 + "]" * 1000 + "\n]\n")
    r = cli("ingest", "tokens", "--format", "webhooks", p)
    assert "Traceback" not in r.output and r.exit_code in (0, 1, 2)


# --- pages CSV -----------------------------------------------------------------------------

PAGES_CASES = [
    ("excel-semicolon-bom", b"\xef\xbb\xbfpage_id;name;business_country\r\n101;Caf\xc3\xa9;BR\r\n", [], 0, 1, 0),
    ("cp1252-refused", "page_id;name\r\n101;Café\r\n".encode("cp1252"), [], 1, 0, 0),
    ("cp1252-encoding", "page_id;name\r\n101;Café\r\n".encode("cp1252"), ["--encoding", "cp1252"], 0, 1, 0),
    ("bad-page-id", b"page_id,name\n\xef\xbc\x91,A\n102,B\n", [], 0, 1, 1),
]


@pytest.mark.parametrize("name,data,args,code,accepted,rejected", PAGES_CASES, ids=[c[0] for c in PAGES_CASES])
def test_pages_table(cli, tmp_path, name, data, args, code, accepted, rejected):
    p = tmp_path / f"{name}.csv"
    p.write_bytes(data)
    r = cli("ingest", "pages", p, *args, "--json")
    assert "Traceback" not in r.output
    assert r.exit_code == code, r.output
    if code == 0:
        f = json.loads(r.stdout.splitlines()[0])["files"][0]
        assert (f["accepted"], f["rejected"]) == (accepted, rejected)


# --- content -------------------------------------------------------------------------------

CONTENT_CASES = [
    ("utf16-library", ('{"page_id": "1", "key": "k", "message": {"text": "Olá"}}\n').encode("utf-16"), [], 0, 1, 0),
    ("cp1252-refused", '{"page_id": "1", "key": "k", "message": {"text": "Olá"}}\n'.encode("cp1252"), [], 1, 0, 0),
    ("nested-1000-deep", ('{"message": ' + "[" * 1000 + "]" * 1000 + "}\n"
                          '{"page_id": "1", "key": "k", "message": {"text": "hi"}}\n').encode(), [], 0, 1, 1),
]


@pytest.mark.parametrize("name,data,args,code,accepted,rejected", CONTENT_CASES,
                         ids=[c[0] for c in CONTENT_CASES])
def test_content_table(cli, tmp_path, name, data, args, code, accepted, rejected):
    p = tmp_path / f"{name}.jsonl"
    p.write_bytes(data)
    r = cli("ingest", "content", p, *args, "--json")
    assert "Traceback" not in r.output
    assert r.exit_code == code, r.output
    if code == 0:
        f = json.loads(r.stdout.splitlines()[0])["files"][0]
        assert (f["accepted"], f["rejected"]) == (accepted, rejected)


def test_unclosed_quote_in_a_chunked_parallel_file(tmp_path):
    """The chunker and the workers agree: the reject is at the quote's line, rows after it
    are kept, whether the file is parsed whole or in chunks by worker processes."""
    from migrator.inventory import ingest_tokens
    from migrator.store import open_workspace

    rows = [f"101,tok{i}" for i in range(400)]
    rows[10] = '101,"tok10'
    p = tmp_path / "t.csv"
    p.write_text("page_id,token\n" + "\n".join(rows) + "\n")
    got = []
    for name, opts in (("whole", {"workers": 0}), ("chunked", {"workers": 2, "chunk_chars": 500})):
        w = open_workspace(tmp_path / f"{name}.db")
        f = ingest_tokens(w, [p], **opts).files[0]
        lines = [r[0] for r in w.conn.execute("SELECT line FROM rejects")]
        got.append((f.accepted, f.rejected, lines, w.conn.execute("SELECT count(*) FROM tokens").fetchone()[0]))
        w.close()
    assert got[0] == got[1] == (399, 1, [12], 399)


@pytest.mark.parametrize("command, header", [
    ("tokens", "page_id,token,topic_title,topic_title\n1,T1,Deals,Other\n"),
    ("pages", "page_id,name,business_country,ad_account_id,currency,name\n1,Acme,US,111,USD,Other\n"),
])
def test_a_header_naming_a_column_twice_is_refused_not_read_silently(tmp_path, command, header):
    from click.testing import CliRunner

    from migrator.cli import main

    p = tmp_path / "dup.csv"
    p.write_text(header)
    r = CliRunner().invoke(main, ["--db", str(tmp_path / "ws.db"), "ingest", command, str(p)])
    assert r.exit_code == 1 and "more than once" in r.output, r.output


def test_a_token_named_on_another_page_is_a_reject_not_a_silent_loss(tmp_path):
    """RN tokens are issued per Page: a row that names another page for a token the workspace (or an
    earlier row) already holds would move the subscriber or vanish as 'accepted'. It is rejected,
    with both pages named, and the counts add up."""
    from click.testing import CliRunner

    from migrator.cli import main

    db = str(tmp_path / "ws.db")
    p = tmp_path / "same.csv"
    p.write_text("page_id,token,topic_title\n111,SAMETOK,A\n222,SAMETOK,B\n111,SAMETOK,A\n")
    r = CliRunner().invoke(main, ["--db", db, "ingest", "tokens", "--json", str(p)])
    f = json.loads(r.output)["files"][0]
    assert (f["records"], f["accepted"], f["duplicates"], f["rejected"]) == (3, 1, 1, 1), f
    q = tmp_path / "moved.csv"
    q.write_text("page_id,token,topic_title\n333,SAMETOK,C\n")
    r = CliRunner().invoke(main, ["--db", db, "ingest", "tokens", str(q)])
    assert r.exit_code == 1 and "already belongs to page 111" in r.output
    import sqlite3
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT page_id FROM tokens WHERE token = 'SAMETOK'").fetchall() == [("111",)]
    assert conn.execute("SELECT COUNT(*) FROM rejects WHERE field = 'page_id'").fetchone()[0] == 2


def test_content_naming_page_zero_is_rejected_like_a_token_file_would(tmp_path):
    from click.testing import CliRunner

    from migrator.cli import main

    p = tmp_path / "c.jsonl"
    p.write_text('{"page_id":"0","key":"k","message":{"text":"hi"}}\n'
                 '{"page_id":"123","key":"k2","message":{"text":"ok"}}\n')
    r = CliRunner().invoke(main, ["--db", str(tmp_path / "ws.db"), "ingest", "content", "--json", str(p)])
    f = json.loads(r.output)["files"][0]
    assert (f["accepted"], f["rejected"]) == (1, 1) and "not a Page id" in f["first_rejects"][0]["reason"]

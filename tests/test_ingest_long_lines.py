"""One enormous line in an input is one reject read in bounded memory (it took ~1 GB of RSS for a
100 MB line), in every line-based input; and a CSV field past 64 KB that does close is reported as
too long, not as "never closed"."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from migrator.inventory import ingest_tokens
from migrator.inventory.sources import MAX_LINE_CHARS
from conftest import webhook

BIG = MAX_LINE_CHARS + 1_000_000


def _rejects(ws, severity="reject"):
    return [(r[0], r[1], r[2]) for r in ws.conn.execute(
        "SELECT line, reason, excerpt FROM rejects WHERE severity = ? ORDER BY line", (severity,))]


def _tokens(ws):
    return sorted(r[0] for r in ws.conn.execute("SELECT token FROM tokens"))


def _csv(path, *, long_row: str, eol="\n"):
    rows = ["page_id,token,timezone"] + [f"123,TOKC{i},UTC" for i in range(5)] + [long_row] + \
        [f"123,TOKC{i},UTC" for i in range(5, 9)] + ["0,TOKBAD,UTC"]
    path.write_text(eol.join(rows) + eol, newline="")
    return path


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_a_csv_line_too_long_is_one_reject_and_the_lines_after_keep_their_numbers(ws, tmp_path, cli, eol):
    f = _csv(tmp_path / "tokens.csv", long_row="123,TOKX," + "A" * BIG, eol=eol)
    r = cli("ingest", "tokens", f)
    assert r.exit_code == 0, r.output
    assert "11 records: 9 accepted, 0 duplicate, 0 ignored, 2 rejected" in r.output
    (line, reason, excerpt), (bad_line, bad_reason, _) = _rejects(ws)
    assert line == 7 and reason.startswith(f"line of {BIG + 9:,} characters, longer than the "
                                           f"{MAX_LINE_CHARS:,} any record can be: skipped")
    assert excerpt == ("123,TOKX," + "A" * BIG)[:200]
    assert bad_line == 12 and "page_id" in bad_reason            # numbering goes on right after it
    assert _tokens(ws) == [f"TOKC{i}" for i in range(9)]


def test_json_lines_webhooks_content_and_receipts_skip_a_line_too_long(ws, tmp_path, cli):
    listing = tmp_path / "listing.jsonl"
    listing.write_text("\n".join([json.dumps({"page_id": "123", "notification_messages_token": "TOKL1"}),
                                  json.dumps({"page_id": "123", "notification_messages_token": "TOKL2",
                                              "pad": "x" * BIG}),
                                  json.dumps({"page_id": "123", "notification_messages_token": "TOKL3"})]) + "\n")
    r = cli("ingest", "tokens", listing)
    assert r.exit_code == 0 and "2 accepted" in r.output and "1 rejected" in r.output, r.output
    hooks = tmp_path / "hooks.jsonl"
    hooks.write_text("\n".join([json.dumps(webhook("123", "PS0", "TOKW0", 1000)), "x" * BIG,
                                json.dumps(webhook("123", "PS1", "TOKW1", 1001))]) + "\n")
    r = cli("ingest", "tokens", hooks)
    assert r.exit_code == 0 and "2 accepted" in r.output and "1 rejected" in r.output, r.output
    content = tmp_path / "content.jsonl"
    content.write_text("\n".join([json.dumps({"page_id": "123", "key": "a", "topic_title": "T",
                                              "message": {"text": "Hi"}}),
                                  json.dumps({"page_id": "123", "key": "b", "topic_title": "T",
                                              "message": {"text": "y" * BIG}})]) + "\n")
    r = cli("ingest", "content", content)
    assert r.exit_code == 0 and "1 accepted" in r.output and "1 rejected" in r.output, r.output
    receipts = tmp_path / "receipts.jsonl"
    receipts.write_text("z" * BIG + "\n")
    r = cli("ingest", "receipts", receipts, "--json")
    assert json.loads(r.stdout)["rejected"] == 1, r.output
    lines = {(r[0].rsplit("/", 1)[-1], r[1]) for r in ws.conn.execute(
        "SELECT path, line FROM rejects WHERE reason LIKE 'line of %'")}
    assert lines == {("listing.jsonl", 2), ("hooks.jsonl", 2), ("content.jsonl", 2), ("receipts.jsonl", 1)}
    assert _tokens(ws) == ["TOKL1", "TOKL3", "TOKW0", "TOKW1"]


def test_a_line_just_under_the_limit_is_read(ws, tmp_path):
    item = {"page_id": "123", "notification_messages_token": "TOKEDGE", "pad": ""}
    item["pad"] = "p" * (MAX_LINE_CHARS - len(json.dumps(item)))
    f = tmp_path / "edge.jsonl"
    f.write_text(json.dumps(item) + "\n")
    assert len(json.dumps(item)) == MAX_LINE_CHARS
    s = ingest_tokens(ws, [f], workers=0)
    assert (s.accepted, s.rejected) == (1, 0)


def test_memory_stays_bounded_by_the_line_limit_not_the_line(ws, tmp_path):
    """The parse happens in this process (workers=0): nothing the size of the line is ever held."""
    size = 12 * MAX_LINE_CHARS                                   # 48 MB on one line
    f = _csv(tmp_path / "huge.csv", long_row="123,TOKX," + "A" * size)
    tracemalloc.start()
    try:
        s = ingest_tokens(ws, [f], workers=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (s.accepted, s.rejected) == (9, 2)
    assert peak < size // 2, f"peak {peak:,} bytes for a {size:,}-character line"


# --------------------------------------------------------------- a closed field past 64 KB
def test_a_closed_field_past_64_kb_is_said_to_be_too_long_not_never_closed(ws, tmp_path, cli):
    f = tmp_path / "fields.csv"
    f.write_text("page_id,token,timezone\n"
                 "123,TOKF1,UTC\n"
                 '123,TOKF2,"' + "A" * 70_000 + '"\n'                       # line 3: quoted, closed
                 "123,TOKF3," + "B" * 70_000 + "\n"                         # line 4: unquoted
                 "123,TOKF4,UTC\n"
                 '123,TOKF5,"' + "C" * 40_000 + "\n" + "D" * 40_000 + '"\n'  # line 6: closes on line 7
                 "123,TOKF6,UTC\n"
                 '123,TOKF7,"never closed\n'                                # line 9: runs to the end
                 "123,TOKF8,UTC\n")
    r = cli("ingest", "tokens", f)
    assert r.exit_code == 0, r.output
    reasons = {line: reason for line, reason, _ in _rejects(ws)}
    assert reasons[3].startswith("a field on this line is 70,000 characters long, longer than the 65,536 "
                                 "a field may hold")
    assert reasons[4].startswith("a field on this line is 70,000 characters long")
    assert reasons[6].startswith("a field opened on this line (its quote closes 1 line below) is 80,001 "
                                 "characters long")
    assert reasons[9].startswith("a quoted field opened on this line is never closed")
    assert "never closed" not in reasons[3] + reasons[4] + reasons[6]
    assert {"TOKF1", "TOKF4", "TOKF6"} <= set(_tokens(ws))


def test_pages_files_give_the_same_reason(ws, tmp_path, cli):
    f = tmp_path / "pages.csv"
    f.write_text("page_id,name,business_country,ad_account_id,currency\n"
                 '123,"' + "N" * 70_000 + '",US,111,USD\n'
                 "456,Shop,US,111,USD\n")
    r = cli("ingest", "pages", f)
    assert r.exit_code == 0, r.output
    (line, reason, _), = _rejects(ws)
    assert line == 2 and reason.startswith("a field on this line is 70,000 characters long")


# --------------------------------------------------------------- the bounded line reader itself
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from migrator.inventory.sources import LongLine, SafeText  # noqa: E402
from _hyp import examples  # noqa: E402


def _expected(text: str, limit: int):
    import io

    out = []
    for line in io.StringIO(text, newline="").readlines():
        body = line.rstrip("\r\n")
        out.append(LongLine(len(body), body[:min(200, limit + 1)], limit) if len(line) > limit + (len(line) - len(body))
                   else line)
    return out


@settings(max_examples=examples(300), deadline=None)
@given(pieces=st.lists(st.tuples(st.sampled_from(["a", "bb", "é", "x" * 9, ""]), st.integers(0, 12),
                                 st.sampled_from(["\n", "\r\n", "\r", ""])), max_size=12),
       limit=st.integers(1, 20))
def test_lines_are_the_files_lines_with_long_ones_replaced(pieces, limit):
    """Whatever the line ends (CRLF split at the limit, lone CRs), the reader gives every line
    as reading the whole file would, a line past `limit` as one LongLine, and nothing else."""
    import io

    text = "".join(word * n + end for word, n, end in pieces)
    raw = io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8", newline="")
    got = list(SafeText(raw, "x", max_line=limit).lines())
    assert got == _expected(text, limit)

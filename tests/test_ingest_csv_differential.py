"""Differential tests of the CSV stager's fast paths, and of what the throughput work changed.

The generated CSV converter checks clean values inline (and remembers accepted page ids,
titles, zones, countries and statuses in dicts); `_compile_csv_row(thorough=True)` builds the
same converter with every field through its thorough helper alone. For any chunk, clean or
messy, the stage tables (rows in order, rejects, warnings) and the counts must be identical.
The stage database is built with apsw; the sqlite3 fallback must build the same tables.
"""

from __future__ import annotations

import hashlib
import sqlite3
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.inventory import stage
from migrator.inventory.stage import Chunk, stage_chunk
from migrator.inventory.tokens import CSV_COLUMNS, CsvLayout, _compile_csv_row

from _hyp import examples

# clean values first (the fast paths), then near misses of each (the thorough helpers decide)
_CELLS = {
    "page_id": ["100000000000000", "2", "0123", "P1", "", " 7 ", "\uff11\uff12", "1" * 21, "1" * 20, "0",
                "123\u200f", "12a"],
    "token": ["10000000000000000000", "T", "a" * 1024, "a" * 1025, "\u00e91", "\u4e2d\u6587", "tok en", "",
              " T ", "T\u200e", "T-1", "T\x0b", "\u0661\u0662"],
    "psid": ["1000000000000000", "9", "", " 9", "u1", "1" * 65, "1" * 64, "\u0661\u0662", "9 ", "-9"],
    "topic_title": ["Deals", " Deals ", "", "   ", "\u3000x\u3000", "\u202eX", "a;b", "Price drops"],
    "timezone": ["America/Sao_Paulo", "UTC", "US/Eastern", "Etc/GMT+5", "", "utc", "europe/london",
                 "Mars/Olympus", "UTC\u200f", " UTC"],
    "country": ["US", "BR", "", "uk", "UK", "mx", "XX", "usa", " US", "U S"],
    "token_status": ["active", "stopped", "", "Active", "STOPPED", " active", "paused"],
    "user_token_status": ["NOT_REFRESHED", "REFRESHED", "", "refreshed", "not refreshed", "X"],
    "frequency": ["DAILY", "WEEKLY", "MONTHLY", "", "daily", "Monthly ", "HOURLY"],
}
_TIMES = ["1654101006", "1654101006000", "", "2022-06-01T15:15:17Z", "2022-02-30T00:00:00Z",
          "2022-06-01T24:00:00Z", "2022-06-01 15:15:17", "1072915200", "1072915199", "4102444800",
          "4102444799", "1072915200000", "4102444800000", "+1654101006", "1_654101006", "165410100",
          "16541010060", "\uff11654101006", " 1654101006", "99999999999999", "x", "2022-06-01T15:15:17+02:00",
          # ten digits in range, one of them not ASCII: no text fast path (SQLite would keep it as text)
          "165410100\u0666", "\u0661654101006", "1654101006\u0660\u0660\u0660", "\u0661654101006000", "16541010\u06660000", "1654101006999", "4102444799999"]
for _c in ("token_expiry", "created_at", "next_eligible_at", "last_sent_at"):
    _CELLS[_c] = _TIMES


@st.composite
def _chunk(draw):
    """A plain (unquoted) CSV chunk: a header with page_id and token among other known and
    unknown columns in any order, rows of mostly clean cells, some of another width or blank."""
    others = draw(st.lists(st.sampled_from([c for c in CSV_COLUMNS if c not in ("page_id", "token")] + ["notes"]),
                           unique=True, max_size=len(CSV_COLUMNS)))
    header = draw(st.permutations(["page_id", "token", *others]))
    delimiter = draw(st.sampled_from([",", ";", "|", "\t"]))
    rows = []
    for i in range(draw(st.integers(0, 40))):
        kind = draw(st.integers(0, 19))
        if kind == 0:
            rows.append(draw(st.sampled_from(["", "   ", delimiter * (len(header) - 2), delimiter * len(header)])))
            continue
        cells = []
        for name in header:
            pool = _CELLS.get(name, ["n", ""])
            messy = draw(st.integers(0, 5)) == 0
            cell = draw(st.sampled_from(pool if messy else pool[:2]))
            if name == "token" and not messy:
                cell = f"{cell}{i}"  # distinct tokens, so most rows are new
            cells.append(cell.replace(delimiter, " "))
        rows.append(delimiter.join(cells))
    end = draw(st.sampled_from(["\n", "", "\n\n"]))
    return header, delimiter, "\n".join(rows) + (end if rows else ""), draw(st.integers(1, 5))


def _tables(staged):
    conn = sqlite3.connect(":memory:")
    conn.deserialize(staged.db)
    return ({t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
             for t in ("event_stage", "reject_stage", "snapshot_stage")},
            staged.snapshots, staged.events, staged.ignored, staged.rejected, staged.warnings,
            staged.repeated_tokens)


def _thorough(header, delimiter) -> CsvLayout:
    layout = CsvLayout(header, delimiter)
    layout.row_to_stage, layout.stage_rows, layout.columns = _compile_csv_row(header, thorough=True)
    return layout


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_chunk())
def test_the_fast_csv_converter_stages_what_the_thorough_helpers_stage(case):
    header, delimiter, text, first = case
    fast = _tables(stage_chunk(Chunk("csv", text, first, csv_layout=CsvLayout(header, delimiter))))
    again = _tables(stage_chunk(Chunk("csv", text, first, csv_layout=CsvLayout(header, delimiter))))
    slow = _tables(stage_chunk(Chunk("csv", text, first, csv_layout=_thorough(header, delimiter))))
    assert fast == slow
    assert again == fast  # the dicts of accepted values, filled by the first pass, change nothing


def test_the_thorough_oracle_differs_from_a_broken_fast_path():
    """The oracle can fail: a fast path that accepted a page id with a leading zero as it is
    (the thorough helper rejects it) is caught."""
    header = ["page_id", "token"]
    text = "0123,T1\n100,T2\n"
    broken = CsvLayout(header)
    with mock.patch.dict(broken.stage_rows.__globals__["_PAGES"], {"0123": "0123"}):
        got = _tables(stage_chunk(Chunk("csv", text, 2, csv_layout=broken)))
    assert got != _tables(stage_chunk(Chunk("csv", text, 2, csv_layout=_thorough(header, ","))))


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_chunk())
def test_apsw_and_sqlite3_build_the_same_stage_database(case):
    header, delimiter, text, first = case
    chunk = Chunk("csv", text, first, csv_layout=CsvLayout(header, delimiter))
    with_apsw = _tables(stage_chunk(chunk))
    with mock.patch.object(stage, "apsw", None):
        assert _tables(stage_chunk(chunk)) == with_apsw


def test_a_stage_row_of_the_wrong_width_is_refused_by_both_builders():
    for apsw in (stage.apsw, None):
        sink = stage.StageSink()
        sink.snapshot_columns = ("line", "token", "token_hash", "page_id")
        sink.snapshots = [(2, "T1", "h", "1"), (3, "T2", "h")]
        with mock.patch.object(stage, "apsw", apsw):
            try:
                sink.finish()
            except ValueError as exc:
                assert "stage rows must have 4 values" in str(exc)
            else:  # pragma: no cover - the failure the test looks for
                raise AssertionError("a short row was bound")


@settings(max_examples=examples(200), deadline=None)
@given(value=st.text())
def test_short_hash_is_the_first_twelve_hex_digits_of_sha256(value):
    from migrator.privacy import sha256, short_hash

    raw = value.encode("utf-8", "surrogatepass")
    assert sha256(raw).hexdigest() == hashlib.sha256(raw).hexdigest()
    assert short_hash(value) == hashlib.sha256(raw).hexdigest()[:12]


def test_the_snapshot_key_is_printf_of_the_run_and_the_line():
    """The merge spells a snapshot row's key without printf; it must be the same text."""
    from migrator.inventory.writer import _SNAPSHOT_KEY

    conn = sqlite3.connect(":memory:")
    for run in (1, 7, 12345, 9_999_999_999, 10 ** 10, 2 ** 40):
        for line in (0, 1, 2, 99, 10 ** 9, 9_999_999_999, 10 ** 10, 10 ** 12, 2 ** 62):
            want, got = conn.execute(
                f"SELECT printf('s%010d%010d', :snapshot_run, line), {_SNAPSHOT_KEY} FROM (SELECT :line AS line)",
                {"snapshot_run": run, "line": line, "snapshot_prefix": "s%010d" % run}).fetchone()
            assert got == want, (run, line)


def test_the_title_dict_stays_small_whatever_the_titles():
    """Titles are remembered only while short and up to a count: a file of long, distinct
    titles (a CRM's notes column mapped to topic_title) must not pin them all in memory."""
    from migrator.inventory import tokens

    tokens._TITLE_CACHE.clear()
    layout = CsvLayout(["page_id", "token", "topic_title"])
    text = "".join(f"1,T{i},{'x' * 5000}{i}\n" for i in range(300))
    staged = stage_chunk(Chunk("csv", text, 2, csv_layout=layout))
    assert staged.snapshots == 300
    assert sum(map(len, tokens._TITLE_CACHE)) <= tokens._CACHE_MAX * tokens._CACHE_CHARS
    assert not tokens._TITLE_CACHE  # none of these was short enough
    text = "".join(f"1,U{i},t{i}\n" for i in range(tokens._CACHE_MAX + 50))
    stage_chunk(Chunk("csv", text, 2, csv_layout=layout))
    assert len(tokens._TITLE_CACHE) == tokens._CACHE_MAX

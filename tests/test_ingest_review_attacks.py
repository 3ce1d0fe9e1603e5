"""Hostile review of the CSV throughput work (48a23e9..4685806): what it must not change.

Each test here holds a guarantee the speed-ups could break: flat memory whatever the file
holds, the same stored result whatever the chunking, workers or caches, and no traceback.
"""

from __future__ import annotations

import gc
import tracemalloc

from migrator.inventory import ingest_tokens
from migrator.store import open_workspace


def test_an_ingest_keeps_no_copy_of_the_file_s_long_titles_in_memory(tmp_path):
    """The converter remembers accepted topic titles (shared strings for repeated values), up
    to 4096 of them. A title may be 64 KB long (csv's field limit): remembering long ones kept
    up to 4096 x 64 KB (256 MB) of one file's text alive in a worker, and in this process for
    ever (workers=0 or a small file), where an ingest's memory must stay flat. 300 distinct 40 KB
    titles (12 MB) must not stay behind after the ingest."""
    p = tmp_path / "titles.csv"
    with open(p, "w") as f:
        f.write("page_id,token,topic_title\n")
        for i in range(300):
            f.write(f"1,T{i},{('%05d' % i) * 8000}\n")
    ws = open_workspace(tmp_path / "ws.db")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert ingest_tokens(ws, [p], workers=0).files[0].accepted == 300
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        ws.close()
    assert kept < 2_000_000, f"{kept:,} bytes of the file stayed in memory after the ingest"


def test_a_ctrl_c_while_the_workers_start_prints_no_traceback_and_kills_no_worker(capfd):
    """Ctrl-C reaches the whole process group. A large file's workers now start first thing in
    an ingest; a worker hit while it still imported (before main() ignores SIGINT) printed a
    KeyboardInterrupt traceback on the user's terminal, or died. Every worker is interrupted
    from the moment it exists until well past its start-up: none may print a traceback, and
    the pool must still stage a chunk."""
    import os
    import signal
    import time

    from migrator.inventory.stage import Chunk
    from migrator.inventory.tokens import CsvLayout
    from migrator.inventory.workers import WorkerPool

    layout = CsvLayout(["page_id", "token"])
    with WorkerPool(2) as pool:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            for proc in pool.procs:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGINT)
            time.sleep(0.002)
        staged = list(pool.map(iter([Chunk("csv", "1,T1\n1,T2\n", 2, csv_layout=layout),
                                     Chunk("csv", "1,T3\n", 4, csv_layout=layout)])))
    assert [s.snapshots for s in staged] == [2, 1]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


# --- whole ingests: the same stored result whatever the path -------------------------------

import gzip  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from _hyp import examples  # noqa: E402
from conftest import webhook  # noqa: E402

# messy cells real exports carry: padded, respelled, non-ASCII, quoted delimiters, near misses
_TOKENS = ["T1", "T2", "T3", "t1", " T2 ", "T-4", "t\u00f6k5", "\u4e2d6", "T7", "", "tok en", "T\u200e8"]
_PAGES = ["100", "200", " 100", "0100", "P1", "", "1" * 21, "\u0663"]
_CELLS = {"psid": ["9", " 9", "u1", ""], "topic_title": ["Deals", " Deals ", "Caf\u00e9", "a,b", "", "x" * 300],
          "timezone": ["UTC", "utc", " UTC", "Mars/X", ""], "country": ["US", "us", "XX", ""],
          "token_status": ["active", "stopped", "Active", "paused", ""],
          "created_at": ["1654101006", "1654101006000", "2022-06-01T15:15:17Z", "1072915199", "x", ""]}
_HEADERS = st.permutations(["page_id", "token", *_CELLS])


def _quoted(cell: str, delimiter: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if delimiter in cell or '"' in cell else cell


@st.composite
def _csv(draw):
    header = draw(_HEADERS)
    delimiter = draw(st.sampled_from([",", ";"]))
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.integers(0, 12))
        if kind == 0:
            rows.append("")
        elif kind == 1:
            rows.append(delimiter.join(["1"] * draw(st.integers(1, len(header) + 1))))
        else:
            pool = {"token": _TOKENS, "page_id": _PAGES, **_CELLS}
            rows.append(delimiter.join(_quoted(draw(st.sampled_from(pool[c])), delimiter) for c in header))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return (delimiter.join(header) + eol + eol.join(rows) + eol).encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])))


def _stored(ws):
    c = ws.conn
    # every column but `id`: new tokens get rowids in chunk order (each chunk sorted by token)
    return ([r[1:] for r in c.execute("SELECT * FROM tokens ORDER BY token")],
            c.execute("SELECT run_id, line, reason, excerpt, severity, field, value FROM rejects"
                      " ORDER BY run_id, line, severity, reason, field").fetchall(),
            c.execute("SELECT id, records, accepted, duplicates, ignored, rejected, status FROM ingest_runs"
                      " ORDER BY id").fetchall())


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])
@given(first=_csv(), second=_csv())
def test_two_files_store_the_same_whether_parsed_here_with_warm_caches_or_by_fresh_workers(tmp_path, first, second):
    """The converter remembers accepted page ids and titles module-wide, and a worker unpickles
    one cached layout per header: nothing remembered from one file (another header, delimiter
    or spelling) may change what the next one stores. Both files ingested in this process
    (whose dicts already hold earlier examples' values) must store exactly what fresh worker
    processes store with chunks of a few rows (the early pool, apsw stage, range-skipped page
    conflict join), rejects and counts included."""
    out = []
    for n, (workers, chunk_chars) in enumerate([(0, 1 << 22), (2, 96)]):
        d = Path(tempfile.mkdtemp(dir=tmp_path))  # fresh per example (tmp_path is per test)
        (d / "a.csv").write_bytes(first)
        (d / "b.csv").write_bytes(second)
        ws = open_workspace(d / "ws.db")
        for name in ("a.csv", "b.csv", "a.csv"):  # the last: the same bytes again
            ingest_tokens(ws, [d / name], workers=workers, chunk_chars=chunk_chars, clock=lambda: 1_800_000_000)
        out.append(_stored(ws))
        ws.close()
    assert out[0] == out[1]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("again", ["same path", "another path", "gzip"])
def test_a_first_ingest_without_hashing_still_keeps_an_opted_out_person_stopped(tmp_path, workers, again):
    """The first ingest of a workspace no longer hashes the file up front (no earlier run can
    match). Its run must still record the hash while reading, so that the same export ingested
    again (at its path or under another) after
    a stop webhook does not re-activate the person who opted out."""
    rows = "".join(f"100,T{i},{i},UTC,active\n" for i in range(300))
    csv = tmp_path / "crm.csv"
    csv.write_text("page_id,token,psid,timezone,token_status\n" + rows)
    ws = open_workspace(tmp_path / "ws.db")
    ingest_tokens(ws, [csv], workers=workers, chunk_chars=2000, clock=lambda: 1_800_000_000)
    stops = tmp_path / "w.jsonl"
    stops.write_text("".join(json.dumps(webhook("100", str(i), f"T{i}", 1_800_000_050_000 + i,
                                                status="STOP_NOTIFICATIONS")) + "\n" for i in range(0, 300, 7)))
    ingest_tokens(ws, [stops], workers=workers, clock=lambda: 1_800_000_060)
    before = ws.conn.execute("SELECT token, status FROM tokens ORDER BY token").fetchall()
    assert sum(s == "stopped" for _, s in before) == len(range(0, 300, 7))
    if again == "same path":
        path = csv
    elif again == "another path":
        path = tmp_path / "copy.csv"
        path.write_bytes(csv.read_bytes())
    else:
        path = tmp_path / "crm.csv.gz"
        path.write_bytes(gzip.compress(csv.read_bytes(), mtime=0))
    f = ingest_tokens(ws, [path], workers=workers, chunk_chars=2000, clock=lambda: 1_800_000_100).files[0]
    after = ws.conn.execute("SELECT token, status FROM tokens ORDER BY token").fetchall()
    if again == "gzip":  # other bytes: a new export, observed now, says active (documented)
        assert f.records == 300
    else:
        assert (f.accepted, f.duplicates) == (0, 300)
        assert after == before
    ws.close()

"""Issue 15, done-when: mutated valid files of each input format never give a traceback,
exit 0, 1 or 2, count every record once, and lose no good record around the mutated one.

Each example takes a valid file (unique tokens, one per line), mutates one data line (text
a real export can hold: quotes, delimiters, NUL, bidi controls, full-width digits, line
breaks, a BOM, a cp1252 byte, huge numbers, deep brackets) and ingests it through the CLI
into a fresh workspace. Invariants:
- no traceback; exit code 0, 1 or 2;
- accepted + duplicate + ignored + rejected == records, per file, in the JSON and in
  `ingest_runs`; `rejects` holds exactly `rejected` rows of severity 'reject';
- unless the whole file was refused (an undecodable byte), every token on an untouched line
  is in the workspace.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.cli import main
from _hyp import examples

N = 8
PIECES = ['"', '""', ",", ";", "\t", "|", "\x00", "\u202e", "\uff11", "\n", "\r", "\r\n", "\ufeff",
          "\\", "{", "}", "[", "]", ":", "-1", "0", "99999999999999999999999", "\ud83d"[:0] + "é",
          "[" * 300, "<script>", " ", ""]
MUTATION = st.tuples(st.sampled_from(["insert", "replace", "delete", "byte"]),
                     st.integers(min_value=0, max_value=N - 1),
                     st.integers(min_value=0, max_value=200),
                     st.lists(st.sampled_from(PIECES), min_size=1, max_size=3).map("".join),
                     st.integers(min_value=1, max_value=20))


def _csv_tokens():
    lines = ["page_id,token,topic_title,token_expiry,frequency"]
    lines += [f"10{i},tok{i}X,Title {i},1767225600,WEEKLY" for i in range(N)]
    return lines, 1


def _listing():
    return [json.dumps({"page_id": f"10{i}", "notification_messages_token": f"tok{i}X",
                        "token_expiry_timestamp": 2145916800000}) for i in range(N)], 0


def _webhooks():
    return [json.dumps({"object": "page", "entry": [{"id": "101", "time": 1760000000000 + i, "messaging": [
        {"sender": {"id": f"5{i}"}, "recipient": {"id": "101"}, "timestamp": 1760000000000 + i,
         "optin": {"type": "notification_messages", "notification_messages_token": f"tok{i}X",
                   "title": "Deals"}}]}]}) for i in range(N)], 0


def _pages():
    return ["page_id,name,business_country"] + [f"10{i},Page {i},US" for i in range(N)], 1


def _content():
    return [json.dumps({"page_id": "101", "key": f"k{i}", "message": {"text": f"Hello {i}"}})
            for i in range(N)], 0


FORMATS = {
    "csv": (_csv_tokens, ["ingest", "tokens", "--format", "csv"]),
    "jsonl": (_listing, ["ingest", "tokens", "--format", "jsonl"]),
    "webhooks": (_webhooks, ["ingest", "tokens", "--format", "webhooks"]),
    "auto": (_csv_tokens, ["ingest", "tokens"]),
    "pages": (_pages, ["ingest", "pages"]),
    "content": (_content, ["ingest", "content"]),
}


def _mutate(lines: list[str], header: int, m) -> tuple[bytes, int]:
    kind, which, at, piece, length = m
    idx = header + which
    line = lines[idx]
    at = min(at, len(line))
    if kind == "insert":
        line = line[:at] + piece + line[at:]
    elif kind == "replace":
        line = line[:at] + piece + line[at + length:]
    elif kind == "delete":
        line = line[:at] + line[at + length:]
    out = list(lines)
    out[idx] = line
    data = ("\n".join(out) + "\n").encode("utf-8")
    if kind == "byte":  # a byte a cp1252 export would hold
        pos = len(("\n".join(out[:idx]) + "\n").encode()) + min(at, len(lines[idx]))
        data = data[:pos] + bytes([0xE9]) + data[pos:]
    return data, idx


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(sorted(FORMATS)), m=MUTATION)
def test_mutated_files_are_counted_and_lose_nothing_around_the_bad_line(fmt, m):
    make, args = FORMATS[fmt]
    lines, header = make()
    data, mutated = _mutate(lines, header, m)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "input.txt"
        path.write_bytes(data)
        db = Path(d) / "ws.db"
        r = CliRunner().invoke(main, ["--db", str(db), *args, str(path), "--json"], catch_exceptions=True)
        assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
        assert "Traceback" not in r.output
        assert r.exit_code in (0, 1, 2), r.output
        out = r.stdout.strip().splitlines()
        if not out or not out[0].startswith("{"):  # refused as a whole (e.g. undecodable byte)
            assert r.exit_code == 1 and "error:" in r.output
            return
        f = json.loads(out[0])["files"][0]
        assert f["accepted"] + f["duplicates"] + f["ignored"] + f["rejected"] == f["records"]
        con = sqlite3.connect(db)
        try:
            row = con.execute("SELECT records, accepted, duplicates, ignored, rejected FROM ingest_runs"
                              " WHERE id = ?", (f["run_id"],)).fetchone()
            assert row == (f["records"], f["accepted"], f["duplicates"], f["ignored"], f["rejected"])
            assert con.execute("SELECT count(*) FROM rejects WHERE run_id = ? AND severity = 'reject'",
                               (f["run_id"],)).fetchone()[0] == f["rejected"]
            assert f["records"] >= N - 1
            assert (r.exit_code == 1) == (f["rejected"] > 0 and f["accepted"] + f["duplicates"] == 0)
            untouched = [i for i in range(N) if header + i != mutated]
            if fmt == "pages":
                have = {x for (x,) in con.execute("SELECT page_id FROM pages")}
                assert {f"10{i}" for i in untouched} <= have
            elif fmt == "content":
                have = {x for (x,) in con.execute("SELECT key FROM content_records")}
                assert {f"k{i}" for i in untouched} <= have
            else:
                have = {x for (x,) in con.execute("SELECT token FROM tokens")}
                assert {f"tok{i}X" for i in untouched} <= have
        finally:
            con.close()

"""Differential tests of the workers' inline fast paths against the thorough ones.

stage_webhooks checks the clean shape of a messaging event inline and stages it without
calling _stage_event; every other event goes to _stage_event. For any event, clean or messy,
the stage rows, rejects, warnings and ignored counts must be exactly what _stage_event alone
gives: the merge reads them as they are.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.inventory.stage import StageSink
from migrator.inventory.tokens import _stage_event, stage_webhooks

from _hyp import examples

_MS = 1_700_000_000_000
# each field: (clean values, messy values); a field is messy one time in six, so most events
# are clean enough to take the inline path and each messy value is tried against it alone
_PAGE = (["200000000000000", "2"], ["0123", "P1", "", " 7 ", "\uff11\uff12", "1" * 21, "1" * 20, 7, 0, True,
                                    None, [], "123\u200f"])
_PSID = (["1000000000000000", "9"], ["", " 9", "u1", 9, None, {}, "1" * 65, "1" * 64, "\u0661\u0662", True,
                                     "9\x00", "\u0969", "9 "])
_TOKEN = (["10000000000000000000", "T", "\u00e91", "a" * 1024, "\u4e2d\u6587", "\u0661\u0662", "\u00b2\u01c5"],
          ["tok en", "", " T ", "a" * 1025, 5, None, "T\u200e", "\ud800x", "T-1", "T\x00", True, "T\u3000"])
_TS = ([_MS, _MS + 1, 1_072_915_200_000, 4_102_444_799_999],
       [1_700_000_000, 1_000, 4_102_444_800_000, 1_072_915_199_999, "2023-11-14T22:13:20Z", str(_MS), "", None,
        True, False, 1.7e12, 1_700_000_000_000.0, 2 ** 70, [1], -_MS, 0])
_STATUS = ([None, "STOP_NOTIFICATIONS", "RESUME_NOTIFICATIONS"],
           ["stop notifications", " STOP_NOTIFICATIONS", "", "  ", "START", 5, ["x"], {"a": 1},
            "STOP_NOTIFICATIONS ", "RESUME NOTIFICATIONS", "resume_notifications", "STOP_NOTIFICATIONS\x00",
            "STOP\u00a0NOTIFICATIONS", "\u017fTOP_NOTIFICATIONS", True, False, 0])
_TEXT = (["Deals", " Deals ", "", "   ", None, "\u3000", "a\x00b", "\u202eX"], [5, 1.5, True, ["x"], {"a": 1}, 2 ** 70])
_ZONE = (["America/Sao_Paulo", "UTC", None, "US/Eastern", "Etc/GMT+5"],
         ["utc", "europe/london", "Mars/Olympus", "", 3, ["UTC"], "UTC\u200f", " UTC", "UTC\x00", True])
_UTS = (["REFRESHED", "NOT_REFRESHED", None], ["refreshed", "not refreshed", "X", "", 1])
_REOPTIN = (["ENABLED", "DISABLED", None], ["enabled", "", "MAYBE", False])
_FREQ = (["DAILY", "WEEKLY", "MONTHLY", None], ["weekly", "", "HOURLY", 2])
_EXPIRY = ([2_145_916_800_000, 2_145_916_800, 1_072_915_200, 4_102_444_799_999, None, 4_102_444_799,
            1_072_915_200_000],
           [1_700_000_000_000_000, 5, 2 ** 70, "2038-01-01T00:00:00Z", "", True, 1.7e9, -1, 4_102_444_800,
            4_102_444_800_000, 2_145_916_800.0, False, 1_072_915_199_999])
# keys a real optin does not carry: they are stored in `data` and hashed into the event key
_EXTRA = (["extra", "a", "\u00e9", "zz"], [1, [1, [2]], {"b": 1, "a": 2}, "x", None, 1.5, 2 ** 64 - 1, 2 ** 70, "\x00"])
_MISSING = object()


def _field(draw, choices):
    clean, messy = choices
    return draw(st.sampled_from(messy if draw(st.integers(0, 5)) == 0 else clean))


@st.composite
def _event(draw):
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from([None, 5, "x", [], {"optin": 5}, {"optin": {"type": "other"}}]))
    optin = {"type": draw(st.sampled_from(["notification_messages"] * 8 + ["one_time_notif_req", None]))}
    for key, strategy in (("notification_messages_token", _TOKEN), ("notification_messages_status", _STATUS),
                          ("title", _TEXT), ("payload", _TEXT), ("notification_messages_timezone", _ZONE),
                          ("user_token_status", _UTS), ("notification_messages_reoptin", _REOPTIN),
                          ("notification_messages_frequency", _FREQ), ("token_expiry_timestamp", _EXPIRY)):
        value = _MISSING if draw(st.integers(0, 9)) == 0 else _field(draw, strategy)
        if value is not _MISSING:
            optin[key] = value
    if draw(st.integers(0, 5)) == 0:
        optin[draw(st.sampled_from(_EXTRA[0]))] = draw(st.sampled_from(_EXTRA[1]))
    ev = {"optin": optin}
    sender = draw(st.sampled_from(["dict"] * 8 + ["missing", "text"]))
    if sender == "dict":
        ev["sender"] = {"id": _field(draw, _PSID)}
    elif sender == "text":
        ev["sender"] = "1"
    recipient = draw(st.sampled_from(["dict"] * 8 + ["missing", "list"]))
    if recipient == "dict":
        ev["recipient"] = {"id": _field(draw, _PAGE)}
    elif recipient == "list":
        ev["recipient"] = ["1"]
    ts = _MISSING if draw(st.integers(0, 9)) == 0 else _field(draw, _TS)
    if ts is not _MISSING:
        ev["timestamp"] = ts
    return ev


def _sink_state(sink: StageSink):
    return sink.events, sink.rejects, sink.warnings, sink.ignored, sink.snapshots


@settings(max_examples=examples(1000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(_event(), min_size=1, max_size=6), entry_id=st.sampled_from(sum(_PAGE, [])),
       entry_time=st.sampled_from(sum(_TS, [])))
def test_inline_event_checks_stage_exactly_what_the_thorough_path_stages(events, entry_id, entry_time):
    entry = {"id": entry_id, "time": entry_time, "messaging": events}
    fast = StageSink()
    stage_webhooks([(3, {"object": "page", "entry": [entry]}, None)], fast)
    slow = StageSink()
    for ev in events:
        _stage_event(3, entry, ev, slow)
    assert _sink_state(fast) == _sink_state(slow)


def test_the_clean_shape_and_its_near_misses_stage_as_the_thorough_path_does():
    clean = {"sender": {"id": "9"}, "recipient": {"id": "2"}, "timestamp": _MS,
             "optin": {"type": "notification_messages", "notification_messages_token": "T", "title": " A ",
                       "payload": "", "notification_messages_timezone": "UTC", "user_token_status": "REFRESHED",
                       "notification_messages_reoptin": "ENABLED", "notification_messages_frequency": "DAILY",
                       "token_expiry_timestamp": 2_145_916_800_000}}
    near = [dict(clean, timestamp=1_700_000_000),  # seconds: the thorough path
            dict(clean, timestamp=4_102_444_800_000), dict(clean, timestamp=1_072_915_199_999),  # out of range
            dict(clean, optin=dict(clean["optin"], notification_messages_timezone="utc")),  # respelled, no warning
            dict(clean, optin=dict(clean["optin"], notification_messages_status="stop_notifications")),
            dict(clean, optin=dict(clean["optin"], token_expiry_timestamp="2038-01-01T00:00:00Z")),
            dict(clean, optin=dict(clean["optin"], big=2 ** 70)),  # cannot be stored: a reject
            *(dict(clean, optin=dict(clean["optin"], token_expiry_timestamp=t))  # warnings at the bounds
              for t in (4_102_444_800, 1_072_915_199, 4_102_444_800_000, 1_072_915_199_999, 1_072_915_200)),
            dict(clean, recipient={"id": "1" * 21}), dict(clean, recipient={"id": "0"}),
            dict(clean, sender={"id": "1" * 65}), dict(clean, sender={"id": "\u0661"})]
    for ev in [clean, *near]:
        entry = {"id": "2", "time": _MS, "messaging": [ev]}
        fast, slow = StageSink(), StageSink()
        stage_webhooks([(1, {"object": "page", "entry": [entry]}, None)], fast)
        _stage_event(1, entry, ev, slow)
        assert _sink_state(fast) == _sink_state(slow)


def test_stage_tables_hold_every_row_in_order_across_multi_row_insert_batches():
    """finish() inserts many rows per statement: every row lands once, in the sorted order
    (rowid order is the order the merge reads), whatever the count modulo a batch."""
    import sqlite3

    from migrator.inventory.stage import Chunk, stage_chunk
    from migrator.inventory.tokens import CsvLayout, EVENT_COLUMNS

    layout = CsvLayout(["page_id", "token", "psid", "topic_title"])
    for n in (0, 1, 57, 58, 59, 116, 130):
        text = "".join(f"{1 + i % 3},T{(i * 7919) % 1000:04d}x{i},{i + 1},t{i}\n" for i in range(n))
        staged = stage_chunk(Chunk("csv", text, 2, csv_layout=layout))
        conn = sqlite3.connect(":memory:")
        conn.deserialize(staged.db)
        got = conn.execute("SELECT line, token, page_id, psid, topic_title FROM snapshot_stage ORDER BY rowid").fetchall()
        want = sorted(((i + 2, f"T{(i * 7919) % 1000:04d}x{i}", str(1 + i % 3), str(i + 1), f"t{i}") for i in range(n)),
                      key=lambda r: r[1])
        assert got == want and staged.snapshots == n
        events = [f'{{"object":"page","entry":[{{"id":"2","time":1,"messaging":[{{"sender":{{"id":"9"}},'
                  f'"recipient":{{"id":"2"}},"timestamp":{1_700_000_000_000 + (i * 37) % n},'
                  f'"optin":{{"type":"notification_messages","notification_messages_token":"T{i}"}}}}]}}]}}\n'
                  for i in range(n)]
        staged = stage_chunk(Chunk("webhooks", "".join(events), 1))
        conn = sqlite3.connect(":memory:")
        conn.deserialize(staged.db)
        got = conn.execute("SELECT line, token, ts_ms FROM event_stage ORDER BY rowid").fetchall()
        want = sorted(((i + 1, f"T{i}", 1_700_000_000_000 + (i * 37) % n) for i in range(n)), key=lambda r: r[2])
        assert got == want and staged.events == n
        assert conn.execute("SELECT count(*) FROM pragma_table_info('event_stage')").fetchone()[0] == len(EVENT_COLUMNS)


def _tables(staged):
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.deserialize(staged.db)
    return ({t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
             for t in ("event_stage", "reject_stage", "snapshot_stage")},
            staged.snapshots, staged.events, staged.ignored, staged.rejected)


def _one_row_inserts(conn, insert, width, rows, one=None):
    """The pre-merge finish(): one row per statement."""
    conn.executemany(f"{insert} {one or '(' + ', '.join('?' * width) + ')'}", rows)


def _reference_values(chunk):
    """The pre-merge read of a JSON-lines chunk: json_values over _numbered (two generators)."""
    from migrator.inventory import stage
    from migrator.inventory.tokens import json_values

    if chunk.fmt == "webhooks":
        return json_values(stage._numbered(chunk.text, chunk.first_line))
    return _real_chunk_json_values(chunk)


from migrator.inventory.stage import chunk_json_values as _real_chunk_json_values  # noqa: E402


@st.composite
def _line(draw):
    import json

    from migrator.inputs import has_lone_surrogate

    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.sampled_from(["", "   ", "{", "[1,", "nul", "\x00", '{"object": "page", "entry": 5}',
                                     '{"object": "instagram", "entry": [{}, {}]}', "[]", "5", '"x"']))
    entries = [{"id": draw(st.sampled_from(sum(_PAGE, []))), "time": draw(st.sampled_from(sum(_TS, []))),
                "messaging": draw(st.lists(_event(), max_size=4))}
               for _ in range(draw(st.integers(1, 2)))]
    text = json.dumps({"object": "page", "entry": entries}, ensure_ascii=draw(st.booleans()))
    if not text.isascii() and has_lone_surrogate(text):  # files are decoded strictly: only \udXXX escapes
        text = json.dumps({"object": "page", "entry": entries})
    if kind == 1:
        text = f"[{text}, {text}]"  # an array line: one value per item, same line number
    elif kind == 2:
        text = text.replace('"object"', '"object": "instagram", "object"', 1)  # a duplicate key: the last wins
    return text


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_line(), max_size=80), end=st.sampled_from(["\n", "", "\n\n", "\r\n"]),
       crlf=st.booleans(), first=st.integers(1, 5))
def test_a_webhook_chunk_stages_the_same_tables_as_the_pre_merge_read_checks_and_insert(lines, end, crlf, first):
    """End to end, stage_chunk against the pre-merge code paths put back: the two-generator
    read, _stage_event for every event, one row per INSERT with the standard library's sqlite3
    (the stage is now built with apsw). The serialized stage tables (rows in rowid order,
    rejects, warnings) and the counts must be identical."""
    from unittest import mock

    from migrator.inventory import stage, tokens
    from migrator.inventory.stage import Chunk, stage_chunk

    text = ("\r\n" if crlf else "\n").join(lines) + end
    for fmt in ("webhooks", "json-document"):
        chunk = Chunk(fmt, text if fmt == "webhooks" else "[" + ",".join(l for l in lines if l.startswith("{")
                                                                          and l.endswith("}")) + "]", first)
        got = _tables(stage_chunk(chunk))
        with mock.patch.object(tokens, "_clean_event_row", lambda *a: None), \
                mock.patch.object(stage, "apsw", None), \
                mock.patch.object(stage, "_insert_rows", _one_row_inserts), \
                mock.patch.object(stage, "chunk_json_values", _reference_values):
            want = _tables(stage_chunk(chunk))
        assert got == want


def test_multi_row_insert_keeps_every_row_in_order_at_every_width_and_batch_edge():
    """_insert_rows against one row per statement: widths that divide 999 exactly (3, 9, 37,
    111, 333, 999), ones that do not, a width past 999 (one row per statement), and row
    counts of 0, a batch -1/0/+1, two batches; values of every stored type, duplicates kept."""
    import sqlite3

    from migrator.inventory.stage import _MAX_PARAMS, _insert_rows

    for width in (1, 2, 3, 9, 16, 17, 37, 111, 333, 998, 999, 1000):
        per = max(1, _MAX_PARAMS // width)
        for n in sorted({0, 1, per - 1, per, per + 1, 2 * per, 2 * per + 1}):
            if n < 0 or n * width > 200_000:
                continue
            values = [None, 0, -1, 2 ** 63 - 1, 1.5, "", "x\x00y", "\u00e9", b"\x00"]
            rows = [[values[(i * 7 + j) % len(values)] if j else i // 2 for j in range(width)] for i in range(n)]
            cols = ", ".join(f"c{j}" for j in range(width))
            got, want = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
            for conn in (got, want):
                conn.execute(f"CREATE TABLE t ({cols})")
            _insert_rows(got, f"INSERT INTO t ({cols}) VALUES", width, rows)
            want.executemany(f"INSERT INTO t ({cols}) VALUES ({', '.join('?' * width)})", rows)
            assert (got.execute("SELECT rowid, * FROM t ORDER BY rowid").fetchall()
                    == want.execute("SELECT rowid, * FROM t ORDER BY rowid").fetchall()), (width, n)


def test_multi_row_insert_refuses_rows_of_the_wrong_width():
    """Flattened into one statement, a long row and a short row would shift columns without an
    error (one row per statement refused them): the width is checked before anything is bound."""
    import sqlite3

    from migrator.inventory.stage import _insert_rows

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b, c)")
    with pytest.raises(ValueError, match="3 values each"):
        _insert_rows(conn, "INSERT INTO t (a, b, c) VALUES", 3, [[1, 2, 3, 4], [5, 6], [7, 8, 9]])
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
    _insert_rows(conn, "INSERT INTO t (a, b, c) VALUES", 3, [])

"""Differential tests of the workers' inline fast paths against the thorough ones.

stage_webhooks checks the clean shape of a messaging event inline and stages it without
calling _stage_event; every other event goes to _stage_event. For any event, clean or messy,
the stage rows, rejects, warnings and ignored counts must be exactly what _stage_event alone
gives: the merge reads them as they are.
"""

from __future__ import annotations

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
_PSID = (["1000000000000000", "9"], ["", " 9", "u1", 9, None, {}, "1" * 65, "1" * 64, "\u0661\u0662"])
_TOKEN = (["10000000000000000000", "T", "\u00e91", "a" * 1024],
          ["tok en", "", " T ", "a" * 1025, 5, None, "T\u200e", "\ud800x", "T-1"])
_TS = ([_MS, _MS + 1, 1_072_915_200_000, 4_102_444_799_999],
       [1_700_000_000, 1_000, 4_102_444_800_000, 1_072_915_199_999, "2023-11-14T22:13:20Z", str(_MS), "", None,
        True, 1.7e12, 2 ** 70, [1]])
_STATUS = ([None, "STOP_NOTIFICATIONS", "RESUME_NOTIFICATIONS"],
           ["stop notifications", " STOP_NOTIFICATIONS", "", "  ", "START", 5, ["x"], {"a": 1}])
_TEXT = (["Deals", " Deals ", "", "   ", None], [5, 1.5, True, ["x"], {"a": 1}, "\u202eX"])
_ZONE = (["America/Sao_Paulo", "UTC", None], ["utc", "europe/london", "Mars/Olympus", "", 3, ["UTC"]])
_UTS = (["REFRESHED", "NOT_REFRESHED", None], ["refreshed", "not refreshed", "X", "", 1])
_REOPTIN = (["ENABLED", "DISABLED", None], ["enabled", "", "MAYBE", False])
_FREQ = (["DAILY", "WEEKLY", "MONTHLY", None], ["weekly", "", "HOURLY", 2])
_EXPIRY = ([2_145_916_800_000, 2_145_916_800, 1_072_915_200, 4_102_444_799_999, None],
           [1_700_000_000_000_000, 5, 2 ** 70, "2038-01-01T00:00:00Z", "", True, 1.7e9, -1, 4_102_444_800,
            4_102_444_800_000])
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

"""Ingest of tokens, pages and content: formats, counts, rejects, strict mode, replay order."""

from __future__ import annotations

import gzip
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.errors import InputError
from migrator.inventory import ingest_content, ingest_pages, ingest_token_items, ingest_tokens
from migrator.store import open_workspace

from conftest import webhook, write_jsonl
from _hyp import examples


def tokens(ws):
    return {r["token"]: r for r in ws.db.query("SELECT * FROM tokens ORDER BY token")}


CSV = (
    "page_id,token,psid,topic_title,timezone,country,token_status,user_token_status,token_expiry,"
    "created_at,next_eligible_at,last_sent_at\n"
    "111,tokA,p1,Deals,America/New_York,US,active,REFRESHED,2145916800000,2024-01-02T03:04:05Z,1767225600,\n"
    "111,tokB,p1,News,Europe/Berlin,,stopped,,1700000000,,,\n"
    "111,,p2,,,,,,,,,\n"
    "111,tokC,p3,,,ZZ,,,,,,\n"
    "111,tokD,p4,,,,paused,,,,,\n"
    "111,tokE,p5,,,,,,yesterday,,,\n"
    "111,tokF\n"
    "111,tokA,p1,Deals,America/New_York,US,active,REFRESHED,2145916800000,2024-01-02T03:04:05Z,1767225600,\n"
)


def test_csv_accepts_rejects_with_lines_and_duplicates(ws, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(CSV)
    s = ingest_tokens(ws, [p])
    f = s.files[0]
    # a bad optional field (country, token_status, token_expiry) keeps the subscriber with a
    # warning; only a missing token and a short row are rejects (issue 15.4)
    assert (f.format, f.records, f.accepted, f.duplicates, f.rejected, f.warnings) == ("csv", 8, 5, 1, 2, 3)
    rejects = {r["line"]: (r["severity"], r["field"], r["reason"])
               for r in ws.db.query("SELECT line, severity, field, reason FROM rejects")}
    assert set(rejects) == {4, 5, 6, 7, 8}
    assert rejects[4][:2] == ("reject", None) and "missing token" in rejects[4][2]
    assert rejects[5][:2] == ("warning", "country")
    assert rejects[6][:2] == ("warning", "token_status")
    assert rejects[7][:2] == ("warning", "token_expiry") and "yesterday" in rejects[7][2]
    assert rejects[8][0] == "reject" and "columns" in rejects[8][2]
    assert tokens(ws)["tokC"]["country"] is None and tokens(ws)["tokE"]["token_expiry"] is None
    t = tokens(ws)
    assert t["tokA"]["token_expiry"] == 2145916800  # ms -> s
    assert t["tokA"]["created_at"] == 1704164645
    assert t["tokA"]["country"] == "US"
    assert t["tokB"]["status"] == "stopped"
    assert t["tokB"]["token_expiry"] == 1700000000  # seconds kept
    assert len(t["tokA"]["token_hash"]) == 12


def test_reingest_is_a_noop(ws, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(CSV)
    ingest_tokens(ws, [p])
    before = list(ws.db.query("SELECT * FROM tokens ORDER BY id"))
    s = ingest_tokens(ws, [p])
    assert s.accepted == 0 and s.duplicates == 6
    assert list(ws.db.query("SELECT * FROM tokens ORDER BY id")) == before


def test_gzip_detected_by_content(ws, tmp_path):
    p = tmp_path / "tokens.data"  # no telling extension
    p.write_bytes(gzip.compress(b"page_id,token\n1,a\n1,b\n"))
    s = ingest_tokens(ws, [p])
    assert s.files[0].format == "csv" and s.accepted == 2


def test_listing_items_and_pages(ws, tmp_path):
    item = {"notification_messages_token": "L1", "recipient_id": "psid1",
            "creation_timestamp": 1690000000000, "token_expiry_timestamp": 1705000000,
            "user_token_status": "REFRESHED", "notification_messages_reoptin": "ENABLED",
            "notification_messages_timezone": "Asia/Manila", "topic_title": "Promos",
            "next_eligible_time": 1767225600}
    page = {"page_id": "222", "data": [dict(item, notification_messages_token="L2"),
                                        dict(item, notification_messages_token="L3")],
            "paging": {"cursors": {"after": "x"}}}
    p = write_jsonl(tmp_path / "l.jsonl", [dict(item, page_id="222"), page, {"bogus": 1}])
    s = ingest_tokens(ws, [p])
    f = s.files[0]
    assert f.format == "jsonl" and (f.accepted, f.rejected) == (3, 1)
    t = tokens(ws)
    assert t["L2"]["page_id"] == "222" and t["L2"]["psid"] == "psid1"
    assert t["L1"]["created_at"] == 1690000000 and t["L1"]["timezone"] == "Asia/Manila"
    assert t["L1"]["next_eligible_at"] == 1767225600 and t["L1"]["source"] == "listing"


def test_listing_without_page_id_needs_option(ws, tmp_path):
    p = write_jsonl(tmp_path / "l.jsonl", [{"notification_messages_token": "X"}])
    assert ingest_tokens(ws, [p]).rejected == 1
    assert ingest_tokens(ws, [p], page_id="9").accepted == 1


def test_webhooks_stop_resume_both_spellings_and_ignored(ws, tmp_path):
    deliveries = [
        webhook("1", "u1", "W1", 1000),
        webhook("1", "u1", "W1", 2000, status="STOP NOTIFICATIONS"),
        webhook("1", "u2", "W2", 1000),
        webhook("1", "u2", "W2", 2000, status="STOP_NOTIFICATIONS"),
        webhook("1", "u2", "W2", 3000, status="RESUME NOTIFICATIONS"),
        {"object": "page", "entry": [{"id": "1", "time": 5, "messaging": [
            {"sender": {"id": "u1"}, "recipient": {"id": "1"}, "timestamp": 5, "message": {"text": "hi"}},
            {"sender": {"id": "u1"}, "recipient": {"id": "1"}, "timestamp": 5, "optin": {"ref": "x"}}]}]},
        webhook("1", "u3", "W3", 1000, status="PAUSE"),
    ]
    p = write_jsonl(tmp_path / "w.jsonl", deliveries)
    f = ingest_tokens(ws, [p]).files[0]
    assert (f.format, f.records, f.accepted, f.ignored, f.rejected) == ("webhooks", 8, 5, 2, 1)
    t = tokens(ws)
    assert t["W1"]["status"] == "stopped" and t["W2"]["status"] == "active"
    assert t["W1"]["timezone"] == "America/Sao_Paulo" and t["W1"]["psid"] == "u1"
    assert ws.db["token_events"].count == 5


def test_webhooks_as_json_array_file(ws, tmp_path):
    p = tmp_path / "w.json"
    p.write_text(json.dumps([webhook("1", "u1", "A", 1), webhook("1", "u2", "B", 2)], indent=2))
    assert ingest_tokens(ws, [p]).accepted == 2


def test_reoptin_refresh_and_expiry_units(ws, tmp_path):
    p = write_jsonl(tmp_path / "w.jsonl", [
        webhook("1", "u", "T", 1000, token_expiry_timestamp=1700000000000),
        webhook("1", "u", "T", 2000, status="STOP_NOTIFICATIONS"),
        webhook("1", "u", "T", 3000, token_expiry_timestamp=1800000000, user_token_status="REFRESHED"),
    ])
    ingest_tokens(ws, [p])
    t = tokens(ws)["T"]
    assert (t["status"], t["token_expiry"], t["user_token_status"]) == ("active", 1800000000, "REFRESHED")


def test_duplicate_deliveries_counted(ws, tmp_path):
    d = webhook("1", "u", "T", 1000)
    p = write_jsonl(tmp_path / "w.jsonl", [d, d, d])
    f = ingest_tokens(ws, [p]).files[0]
    assert (f.accepted, f.duplicates) == (1, 2)


def test_snapshot_newer_than_logged_events(ws, tmp_path):
    w = write_jsonl(tmp_path / "w.jsonl", [webhook("1", "u", "T", 1000, status="STOP_NOTIFICATIONS")])
    c = tmp_path / "t.csv"
    c.write_text("page_id,token,token_status,country\n1,T,active,BR\n")
    ingest_tokens(ws, [c])
    ingest_tokens(ws, [w])  # an old log replayed later does not override the newer export
    t = tokens(ws)["T"]
    assert t["status"] == "active" and t["country"] == "BR"
    assert ws.db["token_events"].count == 1  # but it is kept in the history


def _history():
    rng = random.Random(5)
    events = []
    for i in range(12):
        tok = f"T{i}"
        ts = 1000
        events.append(webhook("1", f"u{i % 5}", tok, ts, title=f"t{i}"))
        for _ in range(rng.randint(0, 4)):
            ts += rng.randint(1, 50)
            kind = rng.choice(["STOP_NOTIFICATIONS", "RESUME NOTIFICATIONS", None])
            if kind:
                events.append(webhook("1", f"u{i % 5}", tok, ts, status=kind))
            else:
                events.append(webhook("1", f"u{i % 5}", tok, ts, title=f"t{i}-{ts}",
                                      notification_messages_timezone=rng.choice(["Asia/Tokyo", "UTC"])))
    return events


STATE = "SELECT token, page_id, psid, topic_title, timezone, status, token_expiry FROM tokens ORDER BY token"


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=3))
def test_replay_order_independence(tmp_path_factory, rnd, n_files):
    """Shuffled, repeated and split deliveries give exactly the state of in-order replay."""
    tmp_path = tmp_path_factory.mktemp("replay")  # fresh per example
    events = _history()
    ref = open_workspace(tmp_path / "ref.db")
    ingest_tokens(ref, [write_jsonl(tmp_path / "ordered.jsonl", events)])
    expected = list(ref.db.query(STATE))
    ref.close()

    shuffled = events + rnd.sample(events, k=len(events) // 3)
    rnd.shuffle(shuffled)
    w = open_workspace(tmp_path / "shuffled.db")
    chunks = [shuffled[i::n_files] for i in range(n_files)]
    paths = [write_jsonl(tmp_path / f"part{i}.jsonl", c) for i, c in enumerate(chunks)]
    s = ingest_tokens(w, paths)
    assert list(w.db.query(STATE)) == expected
    assert s.accepted == len(events) and s.duplicates == len(shuffled) - len(events)
    w.close()


def test_strict_writes_nothing_from_the_file(ws, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("page_id,token\n1,a\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("page_id,token\n1,b\n1,\n1,c\n")
    ingest_tokens(ws, [good], strict=True)
    with pytest.raises(InputError) as exc:
        ingest_tokens(ws, [bad], strict=True)
    assert exc.value.line == 3 and "bad.csv" in str(exc.value)
    assert set(tokens(ws)) == {"a"}
    assert ws.db["rejects"].count == 0
    statuses = [r["status"] for r in ws.db.query("SELECT status FROM ingest_runs ORDER BY id")]
    assert statuses == ["ok", "strict_failed"]


def test_missing_required_header_is_a_clear_error(ws, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("page,tok\n1,a\n")
    with pytest.raises(InputError, match="page_id, token"):
        ingest_tokens(ws, [p], fmt="csv")


def test_unknown_format_content(ws, tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("hello world\nthis is not data\n")
    with pytest.raises(InputError, match="cannot tell the format") as exc:
        ingest_tokens(ws, [p])
    assert "--format" in exc.value.hint


def test_several_tokens_of_one_person_kept_apart(ws, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("page_id,token,psid,topic_title\n1,a,u,News\n1,b,u,Deals\n2,c,u,News\n")
    ingest_tokens(ws, [p])
    rows = list(ws.db.query("SELECT * FROM v_persons_with_several_tokens"))
    assert rows == [{"page_id": "1", "psid": "u", "tokens": 2, "topics": rows[0]["topics"]}]


def test_pull_items(ws):
    items = [{"notification_messages_token": "P1", "recipient_id": "u"}, {"topic_title": "no token"}]
    f = ingest_token_items(ws, items, page_id="77")
    assert (f.accepted, f.rejected) == (1, 1)
    assert tokens(ws)["P1"]["source"] == "pull" and tokens(ws)["P1"]["page_id"] == "77"


def test_pages(ws, tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("page_id,name,business_country,ad_account_id,currency\n"
                 "1,Shop,us,act_123,usd\n2,EU shop,DE,,EUR\n3,Bad,XX,,\n4,Bad2,US,abc,USD\n"
                 "1,Shop,US,act_123,USD\n")
    f = ingest_pages(ws, [p]).files[0]
    assert (f.accepted, f.duplicates, f.rejected) == (2, 1, 2)
    row = ws.db["pages"].get("1")
    assert (row["business_country"], row["ad_account_id"], row["currency"]) == ("US", "123", "USD")
    assert ingest_pages(ws, [p]).files[0].accepted == 0


def test_content_dedup_and_links(ws, tmp_path):
    c = tmp_path / "t.csv"
    c.write_text("page_id,token,topic_title\n5,tok1,Deals\n")
    ingest_tokens(ws, [c])
    sends = write_jsonl(tmp_path / "s.jsonl", [
        {"recipient": {"notification_messages_token": "tok1"}, "message": {"text": "Sale!"}},
        {"recipient": {"notification_messages_token": "tok2"}, "message": {"text": "Sale!", "metadata": None}},
        {"recipient": {"notification_messages_token": "tok1"}, "message": {"text": "Sale!"}},
        {"recipient": {"id": "x"}},
    ])
    lib = tmp_path / "lib.json"
    lib.write_text(json.dumps([{"page_id": "5", "key": "welcome", "topic_title": "Deals",
                                "message": {"text": "Welcome"}}]))
    s = ingest_content(ws, [sends, lib])
    assert (s.accepted, s.duplicates, s.rejected) == (3, 1, 1)
    rows = {r["message"]: r for r in ws.db.query("SELECT * FROM contents")}
    assert rows['{"text":"Sale!"}']["uses"] == 2
    assert rows['{"text":"Sale!"}']["page_id"] == "5" and rows['{"text":"Sale!"}']["topic_title"] == "Deals"
    assert rows['{"text":"Welcome"}']["key"] == "welcome"
    assert ingest_content(ws, [sends, lib]).accepted == 0


@pytest.mark.slow
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), fmt=st.sampled_from(["auto", "csv", "jsonl", "webhooks"]))
def test_arbitrary_bytes_never_crash(tmp_path_factory, data, fmt):
    tmp_path = tmp_path_factory.mktemp("junk")
    p = tmp_path / "junk.bin"
    p.write_bytes(data)
    w = open_workspace(tmp_path / "junk.db")
    try:
        for call in (lambda: ingest_tokens(w, [p], fmt=fmt), lambda: ingest_pages(w, [p]),
                     lambda: ingest_content(w, [p], convert=False)):
            try:
                s = call()
            except InputError:
                continue
            f = s.files[0]
            assert f.records == f.accepted + f.duplicates + f.ignored + f.rejected
    finally:
        w.close()


@pytest.mark.slow
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.sampled_from(["object", "entry", "data", "page_id",
                                                 "notification_messages_token", "messaging", "x"]),
                                st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                                             lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                                             max_leaves=6), max_size=4), max_size=5))
def test_arbitrary_json_never_crashes(tmp_path_factory, objs):
    tmp_path = tmp_path_factory.mktemp("json")
    p = tmp_path / "j.jsonl"
    p.write_text("".join(json.dumps(o) + "\n" for o in objs))
    w = open_workspace(tmp_path / "j.db")
    try:
        for fmt in ("jsonl", "webhooks"):
            f = ingest_tokens(w, [p], fmt=fmt).files[0]
            assert f.records == f.accepted + f.duplicates + f.ignored + f.rejected
    finally:
        w.close()


def test_non_ascii_digits_in_times_are_rejects_not_crashes(ws, tmp_path):
    """'²' is a digit to str.isdigit() but not to int(): it used to escape as a ValueError."""
    p = tmp_path / "t.csv"
    p.write_text("page_id,token,token_expiry,created_at\n1,a,\u00b2,\n1,b,5,\u0663\n", encoding="utf-8")
    f = ingest_tokens(ws, [p]).files[0]
    # optional times: kept without them, with a warning (an Arabic-Indic 3 is 1970: out of range)
    assert (f.accepted, f.rejected, f.warnings) == (2, 0, 3)
    assert tokens(ws)["b"]["created_at"] is None and tokens(ws)["a"]["token_expiry"] is None
    hooks = write_jsonl(tmp_path / "w.jsonl", [webhook("1", "u", "c", "\u00b2")])
    f = ingest_tokens(ws, [hooks]).files[0]
    assert (f.accepted, f.rejected) == (0, 1)


ALL = "SELECT * FROM tokens ORDER BY token"  # the id is left out below: merge order sets it
REJECTS = "SELECT line, reason, excerpt FROM rejects ORDER BY line"
EVENTS = "SELECT event_key, token, ts_ms, kind, data, line FROM token_events ORDER BY event_key"


def _ingest_both_ways(tmp_path, path, chunk=97, **kw):
    """Ingest `path` whole in-process and in tiny chunks across 2 worker processes."""
    out = []
    for name, opts in (("whole", {"workers": 0}), ("chunked", {"workers": 2, "chunk_chars": chunk})):
        w = open_workspace(tmp_path / f"{name}.db")
        f = ingest_tokens(w, [path], clock=lambda: 1_700_000_000, **opts, **kw).files[0]
        counts = (f.records, f.accepted, f.duplicates, f.ignored, f.rejected)
        tables = [[{k: v for k, v in r.items() if k != "id"} for r in w.db.query(q)]
                  for q in (ALL, REJECTS, EVENTS)]
        out.append((counts, tables))
        w.close()
    return out


def test_chunked_parallel_csv_equals_whole_file(tmp_path):
    """Chunks cut only between records (quoted newlines, CRLF); workers change nothing."""
    rows = ["page_id,token,psid,topic_title,token_status,created_at"]
    for i in range(60):
        title = f'"Deals, line one\r\nline two ""{i}"""' if i % 7 == 0 else f"Topic {i % 5}"
        status = "paused" if i % 13 == 0 else ("stopped" if i % 3 == 0 else "active")
        rows.append(f"{i % 45 % 4 + 1},tok{i % 45},p{i},{title},{status},{1_600_000_000 + i}")  # a token keeps its page
        if i % 11 == 0:
            rows.append("")  # blank lines count as lines
    p = tmp_path / "t.csv"
    p.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    whole, chunked = _ingest_both_ways(tmp_path, p)
    assert whole == chunked
    counts, (toks, rejects, _) = whole
    # i = 0, 13, 26, 39, 52 have a bad status: kept with a warning
    assert counts[0] == 60 and counts[4] == 0 and len(rejects) == 5
    assert any("line two" in (t["topic_title"] or "") for t in toks)
    assert [r["line"] for r in rejects][:2] == [2, 19]  # a record spanning lines: its first line


def test_chunked_parallel_webhooks_equal_whole_file(tmp_path):
    events = _history()
    shuffled = events + events[:5] + [{"object": "instagram", "entry": [{}]}]
    random.Random(3).shuffle(shuffled)
    p = tmp_path / "w.jsonl"
    p.write_text("".join(json.dumps(o) + "\n" for o in shuffled) + "{broken\n")
    whole, chunked = _ingest_both_ways(tmp_path, p)
    assert whole == chunked
    assert whole[0][2:] == (5, 1, 1)


def test_large_file_loads_with_a_rollback_journal_then_wal_again(tmp_path):
    """A file over two chunks is loaded in rollback-journal mode when nobody else has the
    workspace open, and WAL comes back; with another connection open it stays in WAL."""
    import sqlite3

    p = tmp_path / "t.csv"
    p.write_text("page_id,token\n" + "".join(f"1,tok{i}\n" for i in range(400)))
    w = open_workspace(tmp_path / "ws.db")
    modes = []
    w.conn.set_trace_callback(lambda sql: modes.append(sql) if "journal_mode" in sql else None)
    assert ingest_tokens(w, [p], chunk_chars=500, workers=0).accepted == 400
    assert "PRAGMA main.journal_mode=DELETE" in modes and modes[-1] == "PRAGMA main.journal_mode=WAL"
    assert w.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    other = sqlite3.connect(tmp_path / "ws.db")
    other.execute("SELECT count(*) FROM tokens").fetchone()
    p.write_text("page_id,token\n" + "".join(f"1,new{i}\n" for i in range(400)))
    assert ingest_tokens(w, [p], chunk_chars=500, workers=0).accepted == 400
    assert w.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT count(*) FROM tokens").fetchone()[0] == 800
    other.close()
    w.close()


_TIME_CELLS = st.one_of(
    st.integers(min_value=0, max_value=10**16).map(str),
    st.datetimes(min_value=__import__("datetime").datetime(1, 1, 1),
                 max_value=__import__("datetime").datetime(9999, 12, 31)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.text(alphabet="0123456789-T:Z.+ \u00b2\u0663", max_size=22),
)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(_TIME_CELLS, min_size=1, max_size=30))
def test_csv_times_follow_the_timeparse_rule(tmp_path_factory, cells):
    """The CSV fast paths give exactly what timeparse gives: the same value, or a reject."""
    from migrator.timeparse import TimeParseError, to_epoch_seconds

    tmp_path = tmp_path_factory.mktemp("times")
    p = tmp_path / "t.csv"
    p.write_text("page_id,token,created_at\n" + "".join(f"1,t{i},{c}\n" for i, c in enumerate(cells)),
                 encoding="utf-8")
    w = open_workspace(tmp_path / "ws.db")
    f = ingest_tokens(w, [p]).files[0]
    stored = {r["token"]: r["created_at"] for r in w.db.query("SELECT token, created_at FROM tokens")}
    w.close()
    for i, cell in enumerate(cells):
        try:
            expected = to_epoch_seconds(cell)
        except TimeParseError:
            expected = None  # an optional field: the token is kept without it (a warning)
        if expected is not None and not (1_072_915_200 <= expected < 4_102_444_800):
            expected = None  # before 2004 or from 2100: a warning too
        assert stored[f"t{i}"] == expected, cell
    assert f.accepted == len(cells)


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(st.one_of(st.integers(min_value=-10, max_value=10**16),
                                           st.text(alphabet="0123456789-TZ:", max_size=20)),
                                 st.one_of(st.integers(min_value=-10, max_value=10**16),
                                           st.text(alphabet="0123456789 ", max_size=15))),
                       min_size=1, max_size=20))
def test_webhook_times_follow_the_timeparse_rule(tmp_path_factory, values):
    from migrator.timeparse import TimeParseError, to_epoch_ms, to_epoch_seconds

    tmp_path = tmp_path_factory.mktemp("hooktimes")
    hooks = [webhook("1", "2", f"t{i}", ts, token_expiry_timestamp=exp)
             for i, (exp, ts) in enumerate(values)]
    w = open_workspace(tmp_path / "ws.db")
    ingest_tokens(w, [write_jsonl(tmp_path / "w.jsonl", hooks)])
    stored = {r["token"]: r for r in w.db.query("SELECT token, token_expiry, status_at FROM tokens")}
    w.close()
    def in_range(t):
        return t is not None and 1_072_915_200 <= t < 4_102_444_800

    for i, (exp, ts) in enumerate(values):
        ts = 1_700_000_000_000 + ts if type(ts) is int and 0 <= ts < 10**9 else ts  # as webhook() does
        try:
            ts_ms = to_epoch_ms(ts)
            ok = ts_ms is not None and in_range(ts_ms // 1000)
        except TimeParseError:
            ok = False
        try:
            expiry = to_epoch_seconds(exp)
        except TimeParseError:
            expiry = None
        want = (expiry if in_range(expiry) else None, ts_ms if ok else None)
        if ok:
            assert (stored[f"t{i}"]["token_expiry"], stored[f"t{i}"]["status_at"]) == want
        else:
            assert f"t{i}" not in stored


def test_ingest_run_records_the_sha256_of_the_file_as_stored(ws, tmp_path):
    import hashlib

    plain = tmp_path / "t.csv"
    plain.write_text("page_id,token\n1,a\n1,b\n")
    packed = tmp_path / "w.jsonl.gz"
    packed.write_bytes(gzip.compress(json.dumps(webhook("1", "u", "c", 1700000000000)).encode() + b"\n"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    ingest_tokens(ws, [plain, packed, empty])
    got = [r["file_sha256"] for r in ws.db.query("SELECT file_sha256 FROM ingest_runs ORDER BY id")]
    assert got == [hashlib.sha256(p.read_bytes()).hexdigest() for p in (plain, packed, empty)]


def test_strict_stops_at_the_first_bad_record_of_a_chunked_parallel_file(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("page_id,token\n" + "".join(f"1,tok{i}\n" for i in range(300)) + "1,\n1,last\n")
    w = open_workspace(tmp_path / "ws.db")
    with pytest.raises(InputError) as exc:
        ingest_tokens(w, [p], strict=True, workers=2, chunk_chars=200)
    assert exc.value.line == 302
    assert w.db["tokens"].count == 0 and w.db["rejects"].count == 0
    w.close()


@pytest.mark.parametrize("chunk", [20, 41, 62, 97, 160])
def test_chunk_cuts_follow_csv_quoting_stray_quotes_included(tmp_path, chunk):
    """A quote inside an unquoted field is plain text to csv: it must not shift chunk cuts
    into a later quoted field that holds a newline (or an unclosed quote at the end)."""
    rows = ["page_id,token,topic_title", '1,tokA,55" TV']
    rows += [f"1,tok{i},plain title number {i}" for i in range(3)]
    rows += ['1,tokB,"two\nlines"', '1,tokC,"say ""hi"""']
    rows += [f"1,tok{i},plain title number {i}" for i in range(3, 8)]
    rows += ['1,tokD,"never closed', "1,tok9,x"]
    p = tmp_path / "t.csv"
    p.write_text("\n".join(rows) + "\n")
    whole, chunked = _ingest_both_ways(tmp_path, p, chunk)
    assert whole == chunked
    toks = {t["token"]: t["topic_title"] for t in whole[1][0]}
    assert toks["tokA"] == '55" TV' and toks["tokB"] == "two\nlines" and toks["tokC"] == 'say "hi"'


def test_bad_webhook_numbers_and_missing_paths_are_clear_errors(ws, tmp_path):
    """Found in review: each of these escaped as a traceback."""
    huge_ts = webhook("1", "u", "a", 10**19)
    float_ts = webhook("1", "u", "b", 1e300)
    good = webhook("1", "u", "c", 1700000000000)
    p = write_jsonl(tmp_path / "w.jsonl", [huge_ts, float_ts, good])
    f = ingest_tokens(ws, [p]).files[0]
    assert (f.accepted, f.rejected) == (1, 2)
    doc = webhook("1", "u", "d", 1700000000000, extra=2**70)  # json.loads keeps big ints
    (tmp_path / "doc.json").write_text(json.dumps([doc, good], indent=2))
    f = ingest_tokens(ws, [tmp_path / "doc.json"]).files[0]
    assert f.rejected == 1 and "cannot be stored" in f.first_rejects[0]["reason"]
    with pytest.raises(InputError, match="not found"):
        ingest_tokens(ws, [tmp_path / "missing.csv"], fmt="csv")


def test_newest_optin_wins_its_fields_whole_in_any_order_and_reingest_changes_nothing(tmp_path):
    """Found in review: an older opt-in filled a field the newest opt-in had left empty, so
    the result depended on order (and chunking), and re-ingesting the file changed it."""
    newer = webhook("1", "9", "T", 1_700_000_002_000)
    del newer["entry"][0]["messaging"][0]["optin"]["title"]
    older = webhook("1", "9", "T", 1_700_000_001_000, title="Old")
    others = [webhook("1", str(i), f"X{i}", 1_700_000_000_000 + i) for i in range(3)]
    for order in ([newer, *others, older], [older, *others, newer]):
        d = tmp_path / str(len(list(tmp_path.iterdir())))
        d.mkdir()
        p = write_jsonl(d / "w.jsonl", order)
        whole, chunked = _ingest_both_ways(d, p, chunk=500)
        assert whole == chunked
        assert {t["token"]: t["topic_title"] for t in whole[1][0]}["T"] is None
        w = open_workspace(d / "whole.db")
        before = list(w.db.query(STATE))
        f = ingest_tokens(w, [p]).files[0]
        assert (f.accepted, f.duplicates) == (0, 5) and list(w.db.query(STATE)) == before
        w.close()


def test_workers_do_not_import_from_the_working_directory(tmp_path, monkeypatch):
    """Found in review: `python -c` put the working directory first on the workers' path."""
    (tmp_path / "orjson.py").write_text("raise ImportError('the wrong orjson')\n")
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "t.csv"
    p.write_text("page_id,token\n" + "".join(f"1,tok{i}\n" for i in range(200)))
    w = open_workspace(tmp_path / "ws.db")
    assert ingest_tokens(w, [p], workers=2, chunk_chars=300).accepted == 200
    w.close()


def test_summary_counts_warnings_as_fields_not_records(cli, tmp_path):
    """One record with three bad optional fields was summarised as '3 kept with a warning',
    as if three subscribers had been kept."""
    f = tmp_path / "t.csv"
    f.write_text("page_id,token,token_expiry,last_sent_at,frequency\n1,tokW,2026-13-45,-1,hourly\n1,tokOK,,,\n")
    r = cli("ingest", "tokens", f)
    assert r.exit_code == 0, r.output
    assert "2 accepted" in r.output and "3 field warnings (records kept without those fields)" in r.output
    assert "kept with a warning" not in r.output


@pytest.mark.parametrize("opts", [{"workers": 0}, {"workers": 2, "chunk_chars": 700}])
def test_a_webhook_file_is_status_only_when_it_adds_no_token_and_no_new_opt_in(tmp_path, opts):
    """ingest_runs.status_only (the plan's fingerprint leaves such runs out) from the events a
    run added: stops/resumes of known tokens, or redelivered opt-ins, only."""
    ws = open_workspace(tmp_path / "ws.db")

    def run(name, hooks):
        f = ingest_tokens(ws, [write_jsonl(tmp_path / name, hooks)], **opts).files[0]
        return ws.conn.execute("SELECT status_only FROM ingest_runs WHERE id = ?",
                               (f.run_id,)).fetchone()[0]

    optins = [webhook("1", f"u{i}", f"T{i}", 1000 + i) for i in range(8)]
    stops = [webhook("1", f"u{i}", f"T{i}", 2000 + i, status="STOP_NOTIFICATIONS") for i in range(8)]
    assert run("optins.jsonl", optins) == 0
    assert run("stops.jsonl", stops) == 1
    # old opt-ins again beside new resumes: nothing new but statuses (chunks mix new and known)
    resumes = [webhook("1", f"u{i}", f"T{i}", 3000 + i, status="RESUME_NOTIFICATIONS") for i in range(8)]
    assert run("mixed.jsonl", [x for pair in zip(optins, resumes) for x in pair]) == 1
    # one new opt-in of a known token (its profile may change), among known events
    assert run("reoptin.jsonl", optins + [webhook("1", "u3", "T3", 4000, title="News")]) == 0
    assert run("new.jsonl", stops + [webhook("1", "u9", "T9", 5000, status="STOP_NOTIFICATIONS")]) == 0
    ws.close()


_PLAIN_CELL = st.one_of(
    st.sampled_from(["", " ", "111", "0111", "1", "tokA", "tok B", "2024-01-02T03:04:05Z",
                     "1700000000", "1700000000000", "99999999999999", "US", "active", "DAILY",
                     "America/New_York", "\u0663", "\x00", "\x0b", "\u2028", "a;b", "\t"]),
    st.text(alphabet="019aZ -:T\x00\x0b\x0c\x1c\x85\u2028\u0663\u00b2;|\t", max_size=8),
)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_PLAIN_CELL, min_size=1, max_size=7), min_size=1, max_size=12),
       trailing=st.sampled_from(["", "\n", "\n\n"]))
def test_an_unquoted_csv_reads_as_its_fully_quoted_twin(tmp_path_factory, rows, trailing):
    """A CSV without quotes or CR is read line by line (the fast path); quoting every field
    of the same rows sends them through csv's reader: tokens, rejects, warnings and counts agree."""
    header = ["page_id", "token", "psid", "created_at", "country", "token_status", "frequency"]
    tmp_path = tmp_path_factory.mktemp("plain")
    plain = "\n".join(",".join(r) for r in [header] + rows) + trailing
    quoted = "\n".join(",".join(f'"{c}"' for c in r) for r in [header] + rows) + trailing
    out = []
    for name, text in (("plain", plain), ("quoted", quoted)):
        p = tmp_path / f"{name}.csv"
        p.write_text(text, encoding="utf-8")
        w = open_workspace(tmp_path / f"{name}.db")
        f = ingest_tokens(w, [p], workers=0, clock=lambda: 1_700_000_000).files[0]
        out.append(((f.records, f.accepted, f.duplicates, f.rejected, f.warnings),
                    [tuple(r) for r in w.conn.execute(
                        "SELECT token, token_hash, page_id, psid, created_at, country, status,"
                        " frequency FROM tokens ORDER BY token")],
                    [tuple(r) for r in w.conn.execute(
                        "SELECT line, reason, excerpt, severity, field, value FROM rejects"
                        " ORDER BY line, severity, reason")]))
        w.close()
    assert out[0] == out[1]


def test_a_large_load_rebuilds_its_deferred_indexes_with_sorter_threads_and_restores_the_setting(tmp_path):
    """The deferred person index is rebuilt with SQLite's sorter threads on (the workers are
    done by then) and the connection's own setting comes back, on success and on failure."""
    from migrator.errors import InputError

    p = tmp_path / "t.csv"
    p.write_text("page_id,token,psid\n" + "".join(f"1,tok{i},{i}\n" for i in range(400)))
    w = open_workspace(tmp_path / "ws.db")
    w.conn.execute("PRAGMA threads=0")
    seen = []
    w.conn.set_trace_callback(lambda sql: seen.append(sql) if sql.startswith(("PRAGMA threads=", "CREATE INDEX")) else None)
    assert ingest_tokens(w, [p], chunk_chars=500, workers=0).accepted == 400
    rebuilt = seen.index("CREATE INDEX tokens_person ON tokens(page_id, psid)")
    assert seen[rebuilt - 1].startswith("PRAGMA threads=") and seen[rebuilt - 1] != "PRAGMA threads=0"
    assert w.conn.execute("PRAGMA threads").fetchone()[0] == 0
    assert w.conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'tokens_person'").fetchone()[0] == 1
    # a strict ingest that fails rolls back with the index and the setting as they were
    w.close()
    w = open_workspace(tmp_path / "ws2.db")
    p.write_text("page_id,token,psid\n" + "".join(f"1,tok{i},{i}\n" for i in range(400)) + "0x,bad,1\n")
    try:
        ingest_tokens(w, [p], chunk_chars=500, workers=0, strict=True)
    except InputError:
        pass
    assert w.conn.execute("PRAGMA threads").fetchone()[0] == 0
    assert w.conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'tokens_person'").fetchone()[0] == 1
    w.close()


def test_a_page_conflict_is_found_whatever_the_chunk_ranges(tmp_path):
    """The merge skips its page-conflict join for a chunk when no workspace token sorts between
    the chunk's least and greatest token. A token seen in an earlier chunk (or an earlier file)
    that comes back under another page lies inside its chunk's range by definition: every such
    row is still rejected, in sorted and in shuffled files, at the edges of a chunk too."""
    import random

    rng = random.Random(7)
    tokens = [f"T{i:05d}" for i in range(600)]
    for order in ("sorted", "shuffled"):
        ws = open_workspace(tmp_path / f"{order}.db")
        first = tmp_path / f"{order}-1.csv"
        first.write_text("page_id,token\n" + "".join(f"1,{t}\n" for t in tokens[::7]))
        assert ingest_tokens(ws, [first], workers=0).files[0].rejected == 0
        again = tokens[::7][:20] + tokens[::11]  # the first twenty under page 2, the rest new or known
        rows = [(2 if t in tokens[::7][:20] else 1, t) for t in again]
        if order == "shuffled":
            rng.shuffle(rows)
        second = tmp_path / f"{order}-2.csv"
        second.write_text("page_id,token\n" + "".join(f"{p},{t}\n" for p, t in rows))
        f = ingest_tokens(ws, [second], workers=0, chunk_chars=200).files[0]
        assert f.rejected == sum(p == 2 for p, _ in rows) == 22, (order, f.first_rejects)  # two come twice
        assert ws.conn.execute("SELECT count(*) FROM tokens WHERE page_id = '2'").fetchone()[0] == 0
        ws.close()

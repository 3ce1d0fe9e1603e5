"""The merge's shortcuts (issue 19.5) give the workspace the thorough path gives.

- A webhook chunk whose times all lie outside those of the events logged before the run is
  merged without asking token_events, event by event, whether an earlier run logged it.
- Absent and blank fields are staged as NULL (not '' read back as NULL by the merge).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.inventory import ingest_tokens
from migrator.store import open_workspace

from conftest import webhook, write_jsonl
from _hyp import examples

STATE = ("SELECT token, page_id, psid, topic_title, payload, timezone, status, user_token_status,"
         " token_expiry, profile_at, profile_key, status_at, status_key FROM tokens ORDER BY token")


def _state(ws):
    return [tuple(r.values()) for r in ws.db.query(STATE)]


def test_reingesting_an_old_log_after_a_newer_snapshot_changes_nothing(tmp_path):
    """The old log's events are known: applied again, the older opt-in would fill the time
    zone the newer opt-in left empty (the snapshot in between took the profile)."""
    older = webhook("1", "9", "T", 1_700_000_001_000, title="Old", notification_messages_timezone="UTC")
    newer = webhook("1", "9", "T", 1_700_000_002_000, title="New")
    del newer["entry"][0]["messaging"][0]["optin"]["notification_messages_timezone"]
    log = write_jsonl(tmp_path / "w.jsonl", [older, newer])
    csv = tmp_path / "t.csv"
    csv.write_text("page_id,token,topic_title\n1,T,From CSV\n")
    ws = open_workspace(tmp_path / "ws.db")
    ingest_tokens(ws, [log], clock=lambda: 1_700_000_010)
    ingest_tokens(ws, [csv], clock=lambda: 1_700_000_020)
    before = _state(ws) + [tuple(r.values()) for r in ws.db.query("SELECT updated_run FROM tokens")]
    assert before[0][5] is None  # the newest opt-in had no time zone
    f = ingest_tokens(ws, [log], clock=lambda: 1_700_000_030).files[0]
    assert (f.accepted, f.duplicates) == (0, 2)
    assert _state(ws) + [tuple(r.values()) for r in ws.db.query("SELECT updated_run FROM tokens")] == before
    ws.close()


def _log(n_tokens: int, n_events: int, seed: int) -> list[dict]:
    import random
    rng = random.Random(seed)
    events = []
    for i in range(n_events):
        tok = f"T{rng.randrange(n_tokens)}"
        ts = 1_700_000_000_000 + i * 10
        kind = rng.choice(["STOP_NOTIFICATIONS", "RESUME_NOTIFICATIONS", None, None])
        extra = {} if kind else {"title": rng.choice(["a", "b", " ", ""]),
                                 "notification_messages_timezone": rng.choice(["UTC", "Asia/Tokyo", "  "])}
        if not kind and rng.random() < 0.3:
            extra["notification_messages_timezone"] = None
        events.append(webhook("1", f"u{tok}", tok, ts, status=kind, **extra))
    return events


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), cuts=st.lists(st.integers(1, 59), max_size=3, unique=True),
       redeliver=st.integers(0, 20), chunk=st.sampled_from([300, 2000, 1 << 20]))
def test_a_log_ingested_in_consecutive_files_equals_the_whole_log(tmp_path_factory, seed, cuts, redeliver, chunk):
    """Files of ever newer deliveries (the fast path for all but the first), the last one
    carrying redeliveries of earlier events (the thorough path), end as the whole log does."""
    tmp_path = tmp_path_factory.mktemp("log")
    events = _log(8, 60, seed)
    whole = open_workspace(tmp_path / "whole.db")
    ingest_tokens(whole, [write_jsonl(tmp_path / "all.jsonl", events)], workers=0)
    expected = _state(whole)
    whole.close()

    bounds = [0, *sorted(cuts), len(events)]
    parts = [events[a:b] for a, b in zip(bounds, bounds[1:])]
    parts[-1] = parts[-1] + events[:redeliver]
    paths = [write_jsonl(tmp_path / f"part{i}.jsonl", p) for i, p in enumerate(parts)]
    split = open_workspace(tmp_path / "split.db")
    s = ingest_tokens(split, paths, chunk_chars=chunk, workers=2 if chunk == 300 else 0)
    assert _state(split) == expected
    assert (s.accepted, s.duplicates) == (len(events), min(redeliver, len(events)))
    split.close()


def test_blank_and_absent_fields_are_stored_as_null_never_as_empty_text(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("page_id,token,psid,topic_title,timezone,country,token_status,created_at\n"
                   "1,A,,   ,,,,\n1,B, , , , , , \n1,C,7,Deals,UTC,FR,active,1700000000\n")
    log = write_jsonl(tmp_path / "w.jsonl", [
        webhook("2", "8", "D", 1_700_000_000_000, title="  ", payload="", notification_messages_timezone=""),
        webhook("2", "", "E", 1_700_000_000_001, title=None, user_token_status=None)])
    ws = open_workspace(tmp_path / "ws.db")
    for workers in (0, 2):
        ingest_tokens(ws, [csv, log], workers=workers, chunk_chars=40)
    cols = [r["name"] for r in ws.db.query("PRAGMA table_info(tokens)")]
    blank = " OR ".join(f"{c} = ''" for c in cols)
    assert ws.conn.execute(f"SELECT count(*) FROM tokens WHERE {blank}").fetchone()[0] == 0
    assert ws.conn.execute("SELECT count(*) FROM token_events WHERE psid = ''").fetchone()[0] == 0
    got = {r["token"]: (r["psid"], r["topic_title"], r["timezone"], r["payload"])
           for r in ws.db.query("SELECT * FROM tokens")}
    assert got["A"] == got["B"] == (None, None, None, None)
    assert got["C"] == ("7", "Deals", "UTC", None)
    assert got["D"][1:] == (None, None, None)
    ws.close()


_JSON_LINE = st.one_of(
    st.sampled_from(["", " ", "\x0c", "{not json", "[1,", "{}", "[]", '{"object": "page", "entry": 5}',
                     '{"data": [{"notification_messages_token": "Z", "page_id": "3"}]}']),
    st.builds(lambda tok, ts, title: __import__("json").dumps(webhook("1", "9", tok, ts, title=title),
                                                                ensure_ascii=False),
              st.sampled_from(["A", "B", "C d"]), st.integers(0, 5),
              st.text(alphabet="ab \u2028\u0085\x0b\x1c", max_size=4)),
)


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_JSON_LINE, min_size=1, max_size=10), fmt=st.sampled_from(["webhooks", "jsonl"]))
def test_json_lines_read_the_same_with_lf_and_crlf_line_ends(tmp_path_factory, lines, fmt):
    """Lines without a CR are split at LF (the fast path), with one through StringIO: the
    same records, rejects and line numbers either way (a U+2028 inside a string ends nothing)."""
    tmp_path = tmp_path_factory.mktemp("lines")
    out = []
    for name, end in (("lf", "\n"), ("crlf", "\r\n")):
        p = tmp_path / f"{name}.jsonl"
        p.write_bytes(end.join(lines).encode("utf-8", "surrogatepass"))
        w = open_workspace(tmp_path / f"{name}.db")
        f = ingest_tokens(w, [p], fmt=fmt, page_id="3", workers=0, clock=lambda: 1_700_000_000).files[0]
        out.append(((f.records, f.accepted, f.duplicates, f.rejected, f.ignored, f.warnings), _state(w),
                    [tuple(r) for r in w.conn.execute(
                        "SELECT line, reason, excerpt, severity FROM rejects ORDER BY line, reason")]))
        w.close()
    assert out[0] == out[1]

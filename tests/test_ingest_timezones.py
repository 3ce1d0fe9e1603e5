"""A time zone no one can use (unknown to tzdata, or carrying control / text-direction characters)
is not kept silently: the record is kept without it, with a warning naming the file, line, column
and value, in every token format (CSV, token listing, webhooks). Known names, in any case, pass."""

from __future__ import annotations

import json

from conftest import webhook

RLO = "\u202e"


def _warnings(ws):
    return [(r[0].rsplit("/", 1)[-1], r[1], r[2], r[3], r[4]) for r in ws.conn.execute(
        "SELECT path, line, field, value, reason FROM rejects WHERE severity = 'warning' ORDER BY path, line")]


def _zones(ws):
    return dict(ws.conn.execute("SELECT token, timezone FROM tokens"))


def test_csv_unknown_and_bidi_zones_warn_with_where_they_came_from(ws, tmp_path, cli):
    f = tmp_path / "tokens.csv"
    f.write_text("page_id,token,timezone\n"
                 "123,TOKA1,Mars/Olympus\n"
                 f"123,TOKA2,Europe/Lon{RLO}don\n"
                 "123,TOKA3,america/new_york\n"          # case is not a fault: regions ignore it too
                 "123,TOKA4,UTC\n"                        # known, places nobody: not a fault of the file
                 "123,TOKA5,Europe/Oslo\x07\n", encoding="utf-8")
    r = cli("ingest", "tokens", f)
    assert r.exit_code == 0, r.output
    assert "5 accepted" in r.output and "3 field warnings" in r.output
    assert "line 2: time zone 'Mars/Olympus' is not a time zone name tzdata knows" in r.output
    assert "line 3: time zone 'Europe/Lon\\u202edon' holds control or text-direction characters" in r.output
    assert "line 6: time zone 'Europe/Oslo\\x07' holds control" in r.output
    assert RLO not in r.output
    w = _warnings(ws)
    assert [(x[0], x[1], x[2], x[3]) for x in w] == [
        ("tokens.csv", 2, "timezone", "Mars/Olympus"), ("tokens.csv", 3, "timezone", f"Europe/Lon{RLO}don"),
        ("tokens.csv", 6, "timezone", "Europe/Oslo\x07")]
    # a known zone in other case is kept as tzdata spells it: zoneinfo (the send window) is case-sensitive
    assert _zones(ws) == {"TOKA1": None, "TOKA2": None, "TOKA3": "America/New_York", "TOKA4": "UTC",
                          "TOKA5": None}


def test_listing_and_webhook_zones_warn_too(ws, tmp_path, cli):
    listing = tmp_path / "listing.jsonl"
    listing.write_text("".join(json.dumps(o) + "\n" for o in [
        {"page_id": "123", "notification_messages_token": "TOKL1", "notification_messages_timezone": "Atlantis/Capital"},
        {"page_id": "123", "notification_messages_token": "TOKL2", "notification_messages_timezone": "Asia/Tokyo"},
    ]))
    r = cli("ingest", "tokens", listing)
    assert r.exit_code == 0 and "1 field warning" in r.output, r.output
    hooks = tmp_path / "hooks.jsonl"
    hooks.write_text("".join(json.dumps(webhook("123", f"PS{i}", f"TOKW{i}", 1000 + i,
                                                notification_messages_timezone=z)) + "\n"
                             for i, z in enumerate(["Europe/Paris", f"{RLO}Asia/Tokyo", "Nowhere"])))
    r = cli("ingest", "tokens", hooks)
    assert r.exit_code == 0 and "2 field warnings" in r.output, r.output
    w = _warnings(ws)
    assert [(x[0], x[1], x[2]) for x in w] == [
        ("hooks.jsonl", 2, "notification_messages_timezone"), ("hooks.jsonl", 3, "notification_messages_timezone"),
        ("listing.jsonl", 1, "notification_messages_timezone")]
    z = _zones(ws)
    assert (z["TOKL1"], z["TOKL2"], z["TOKW0"], z["TOKW1"], z["TOKW2"]) == (None, "Asia/Tokyo", "Europe/Paris",
                                                                             None, None)

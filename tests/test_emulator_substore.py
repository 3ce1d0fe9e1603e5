"""The emulator's compact subscriber store (issue 19.6) behaves as the dict and lists it replaced."""

from __future__ import annotations

from dataclasses import astuple

from migrator.emulator import build_emulator_app
from migrator.emulator.subscribers import Subscriber, SubscriberStore, load_subscribers_workspace
from migrator.execute.ledger import Result
from _exec import planned
from _plan import ingest, tok


def _sub(t, page="P1", **kw):
    return Subscriber(token=t, page_id=page, **kw)


def test_listing_order_and_replacement_keep_first_place():
    st = SubscriberStore()
    st.add([_sub("a"), _sub("b", opted_out=True), _sub("c"), _sub("d", page="P2")])
    assert [s.token for s in st.listing.get("P1")] == ["a", "c"] and len(st.listing.get("P1")) == 2
    assert "P2" in st.listing and "P3" not in st.listing and st.listing.get("P3", []) == []
    st.add([_sub("a", region="GB"), _sub("b"), _sub("e")])     # replaced: keeps its place; b listed now
    assert [s.token for s in st.listing.get("P1")] == ["a", "b", "c", "e"]
    assert st.get("a").region == "GB" and len(st) == 5
    assert [s.token for s in st.listing.get("P1")[1:3]] == ["b", "c"]
    assert sorted(st) == ["a", "b", "c", "d", "e"]


def test_objects_handed_out_stay_live_and_the_mapping_edits():
    st = SubscriberStore()
    st.add([_sub("a"), _sub("b")])
    st["a"].opted_out = True                  # as the tests mark a subscriber
    assert st.get("a").opted_out is True and st["a"] is st["a"]
    assert st.get("b") is not st.get("b")      # the send path keeps nothing
    del st["b"]
    assert "b" not in st and st.get("b") is None and len(st) == 1
    st.setdefault("c", _sub("c", page="P2"))
    assert st["c"].page_id == "P2" and [s.token for s in st.listing.get("P2")] == ["c"]
    st.add([])                                # a rebuild sees the live change: a leaves the listing
    assert [s.token for s in st.listing.get("P1", [])] == []


def test_audience_counts_deliverable_listed_subscribers():
    st = SubscriberStore()
    st.add([_sub("a"), _sub("b", expired=True), _sub("c", wrong_region=True), _sub("d", region="FR"),
            _sub("e", opted_out=True), _sub("f", region="US")])
    assert st.audience("P1", ()) == 3            # a, d, f
    assert st.audience("P1", {"FR"}) == 2
    st["f"].expired = True
    assert st.audience("P1", {"FR"}) == 1


def test_the_workspace_copy_is_what_reading_it_row_by_row_gives(ws, tmp_path):
    """One INSERT ... SELECT (the 10M path) and the row-by-row reader agree on every field."""
    p = planned(ws, tmp_path, 12)
    ingest(ws, tmp_path / "in2", tokens=[tok(i, page="P2", country="GB" if i % 2 else "") for i in range(100, 106)])
    ws.conn.execute("UPDATE tokens SET status = 'stopped' WHERE token IN (?, ?)", (tok(100)["token"], tok(3)["token"]))
    from migrator.execute.ledger import Ledger
    lg = Ledger(ws.conn, p.plan_id)
    lg.ensure_rows()
    rows = lg.claim(p.campaigns[0].key, 3, now=2_000_000_000, max_batch=10**6)
    lg.record([Result(rows[0].send_id, "failed", True, mm_state="opted_out"),
               Result(rows[1].send_id, "failed", True, mm_state="invalid"),
               Result(rows[2].send_id, "failed", True, mm_state="expired")])
    bulk = SubscriberStore()
    bulk.add(load_subscribers_workspace(ws).subscribers)
    slow = SubscriberStore()
    slow.add(list(load_subscribers_workspace(ws).subscribers))
    assert len(bulk) == len(slow) == len(load_subscribers_workspace(ws).subscribers) == 17  # one invalid
    for t in slow:
        assert astuple(bulk.get(t)) == astuple(slow.get(t)), t
    for page in ("P1", "P2"):
        assert [s.token for s in bulk.listing.get(page)] == [s.token for s in slow.listing.get(page)]
    app, loaded = build_emulator_app(workspace=ws, warmup_seconds=0)
    assert len(app.state.emulator.state.subscribers) == 17

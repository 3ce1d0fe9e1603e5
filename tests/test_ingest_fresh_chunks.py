"""A chunk none of whose tokens can conflict is inserted without the upsert (writer.py,
INSERT_SNAPSHOT); any other goes through the upsert. Both must leave the same workspace.

The same CSV is ingested twice into the same earlier state: once as one chunk holding a
repeated token (so every row goes through the upsert), once in chunks of a few rows (so most
chunks of a sorted file take the plain insert). Tokens, rejects and counts must be identical.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.inventory import ingest_tokens
from migrator.store import open_workspace

from _hyp import examples

_HEADER = "page_id,token,psid,topic_title,token_status,created_at\n"
_TOKENS = [f"T{i:03d}" for i in range(40)]


def _row(draw, token: str) -> str:
    page = "1" if draw(st.integers(0, 9)) else "2"  # the second page now and then: a conflict
    psid = draw(st.sampled_from(["", "900", "901"]))
    title = draw(st.sampled_from(["", "Deals", "News"]))
    status = draw(st.sampled_from(["", "active", "stopped"]))
    created = draw(st.sampled_from(["", "1654101006", "1654101007"]))
    return f"{page},{token},{psid},{title},{status},{created}\n"


@st.composite
def _estate(draw):
    earlier = [_row(draw, t) for t in draw(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=8))]
    tokens = draw(st.lists(st.sampled_from(_TOKENS), min_size=2, max_size=60))
    if draw(st.booleans()):
        tokens.sort()  # a file sorted by token: the plain insert's case
    tokens.append(tokens[0])  # one token twice: the one-chunk ingest goes through the upsert
    return "".join(earlier), [_row(draw, t) for t in tokens], draw(st.integers(40, 400))


def _ingest(tmp_path, name: str, earlier: str, rows: list[str], chunk_chars: int):
    ws = open_workspace(tmp_path / f"{name}.db")
    if earlier:
        (tmp_path / "earlier.csv").write_text(_HEADER + earlier)
        ingest_tokens(ws, [tmp_path / "earlier.csv"], fmt="csv", workers=0, clock=lambda: 1_700_000_000)
    (tmp_path / "file.csv").write_text(_HEADER + "".join(rows))
    f = ingest_tokens(ws, [tmp_path / "file.csv"], fmt="csv", workers=0, chunk_chars=chunk_chars,
                      clock=lambda: 1_700_000_100).files[0]
    tokens = ws.conn.execute("SELECT * FROM tokens ORDER BY token").fetchall()
    columns = [d[0] for d in ws.conn.execute("SELECT * FROM tokens").description]
    rejects = ws.conn.execute("SELECT run_id, line, reason, severity FROM rejects ORDER BY run_id, line, reason").fetchall()
    ws.close()
    idx = columns.index("id")  # rowids follow insertion order, which chunking changes
    return ([r[:idx] + r[idx + 1:] for r in tokens], rejects,
            (f.records, f.accepted, f.duplicates, f.rejected, f.warnings))


@settings(max_examples=examples(60), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=_estate())
def test_chunks_inserted_without_the_upsert_end_as_one_chunk_through_it(tmp_path_factory, case):
    earlier, rows, chunk_chars = case
    whole = _ingest(tmp_path_factory.mktemp("one"), "one", earlier, rows, chunk_chars=1 << 20)
    chunked = _ingest(tmp_path_factory.mktemp("many"), "many", earlier, rows, chunk_chars=chunk_chars)
    assert chunked == whole


def test_a_sorted_first_load_in_many_chunks_counts_every_row(tmp_path):
    """The plain insert's common case: a sorted file into an empty workspace, chunk by chunk."""
    rows = [f"1,T{i:05d},9{i},Deals,active,1654101006\n" for i in range(3000)]
    ws = open_workspace(tmp_path / "ws.db")
    (tmp_path / "f.csv").write_text(_HEADER + "".join(rows))
    f = ingest_tokens(ws, [tmp_path / "f.csv"], fmt="csv", workers=0, chunk_chars=4096).files[0]
    assert (f.records, f.accepted, f.duplicates, f.rejected) == (3000, 3000, 0, 0)
    assert ws.conn.execute("SELECT count(*), count(DISTINCT token), min(created_at), max(created_at),"
                           " typeof(created_at) FROM tokens").fetchone() == (3000, 3000, 1654101006, 1654101006, "integer")
    ws.close()

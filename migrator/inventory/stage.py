"""Turn one chunk of an input file into stage rows, packed as a small SQLite database.

Parsing and validating records is most of an ingest's cost and needs nothing from the
workspace, so it can run in worker processes, one per core. Each chunk comes back as a
serialized in-memory SQLite database (`Connection.serialize()`): one memcpy to send, and
the parent attaches it with `deserialize()` and merges it with set-based SQL (writer.py),
without rebuilding a single Python object. Small inputs run the same function in-process.
"""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import dataclass
from itertools import chain, islice
from operator import eq, itemgetter
from typing import Any, Iterator

from migrator.inputs import LONE_SURROGATE, has_lone_surrogate, may_hold_surrogates
from migrator.inventory.tokens import (
    EVENT_COLUMNS, SNAPSHOT_COLUMNS, CsvLayout, json_values, stage_csv, stage_listing,
    stage_listing_items, stage_webhooks,
)

# A snapshot's time columns are declared INTEGER, the rest untyped (values stay as bound). The CSV
# converter stages a clean epoch-seconds field as its text (ten ASCII digits, checked in range)
# and this column's affinity makes it an integer as SQLite stores the row, in the worker: the
# same value the merge got from Python's int(), at a quarter of its cost (int() of a str was 2.4k
# of a worker's 45k instructions a CSV row).
_TIME_COLUMNS = frozenset({"token_expiry", "created_at", "next_eligible_at", "last_sent_at"})
STAGE_SCHEMA = (
    f"CREATE TABLE snapshot_stage ({', '.join(f'{c} INTEGER' if c in _TIME_COLUMNS else c for c in SNAPSHOT_COLUMNS)});"
    f"CREATE TABLE event_stage ({', '.join(EVENT_COLUMNS)});"
    "CREATE TABLE reject_stage (line, reason, excerpt, severity, field, value);"
)
# Events are sorted by time only: near the order of token_events' (ts_ms, event_key) key, which
# is all the insert's locality needs, and sorting on an int is 20x cheaper than on a (time, key)
# tuple (1.8 us an event, a tenth of a worker's time). The sort is stable, so of two copies of one
# event (same key, same time) the first in the file is still the one inserted.
_BY_TIME = itemgetter(EVENT_COLUMNS.index("ts_ms"))


LONG_LINE = "long-line"   # a Chunk standing for one line too long to read (chunks.py)

# sqlite3 binds None by looking for an adapter (type, protocol) and then for __adapt__ and
# __conform__ on it, two failed attribute lookups: ~0.4 us a value, where a str or an int
# costs ~0.05 us. An adapter registered for None ({}.get: a C call that returns None) is found
# in the first lookup, so the absent fields of stage rows bind as fast as present ones. It
# changes nothing else: None still binds as NULL, here and for every other statement.
sqlite3.register_adapter(type(None), {}.get)

# The stage database is built with apsw where it is installed (a dependency; sqlite3 is the
# fallback). Binding is most of a worker's database cost, and the stdlib binds each value
# through its adapter machinery and takes the connection's mutex for every value: 1.9 us per
# 14-value CSV row, against 1.1 us with apsw on a connection opened without a mutex (this
# private, single-threaded one). The image is a plain SQLite file that the parent's sqlite3
# deserializes as before (the schema uses nothing newer than SQLite 3.0).
try:
    import apsw
except ImportError:  # pragma: no cover - apsw is a dependency; kept for a stripped install
    apsw = None


@dataclass(slots=True)
class Chunk:
    """Whole records of one input file: `text` starts at line `first_line`."""

    fmt: str  # csv | jsonl | webhooks | json-document (one JSON value over many lines)
    text: str
    first_line: int
    csv_layout: CsvLayout | None = None
    page_id: str | None = None
    excerpt: str | None = None  # LONG_LINE: the start of the skipped line


@dataclass(slots=True)
class Staged:
    """What a chunk became: the stage database and the counts the parent adds up."""

    db: bytes
    snapshots: int
    events: int
    ignored: int
    rejected: int
    warnings: int = 0
    # some token has two snapshot rows in this chunk (the merge then checks them against each
    # other for a page conflict, not only against the workspace); True when unknown
    repeated_tokens: bool = True

    @property
    def records(self) -> int:
        return self.snapshots + self.events + self.ignored + self.rejected


class StageSink:
    """Collects the rows of one chunk; `finish()` packs them, sorted, into a SQLite database.

    A chunk's rows stay Python lists until then (a chunk is bounded, so memory is too) and
    are sorted here, on the worker's core, in the order of the index the parent inserts them
    into: snapshot rows by token (`tokens`), webhook events by time (`token_events` is keyed
    by time and event key; the parent sorts their narrow merge columns by token itself).
    """

    def __init__(self) -> None:
        self.snapshots: list[list] = []
        self.snapshot_columns: tuple[str, ...] = SNAPSHOT_COLUMNS  # a CSV stages only its own
        self.events: list[list] = []
        self.rejects: list[tuple] = []
        self.warnings: list[tuple] = []
        self.ignored = 0

    def reject(self, line: int, reason: str, excerpt: str | None = None) -> None:
        self.rejects.append((line, reason, excerpt, "reject", None, None))

    def warn(self, line: int, reason: str, excerpt: str | None, field: str, value) -> None:
        """A record kept without one bad optional field: a `warning` row in `rejects`."""
        self.warnings.append((line, reason, excerpt, "warning", field,
                              None if value is None else str(value)[:200]))

    def finish(self) -> Staged:
        by_token = itemgetter(self.snapshot_columns.index("token"))
        self.snapshots.sort(key=by_token)
        tokens = list(map(by_token, self.snapshots))
        repeated = any(map(eq, tokens, islice(tokens, 1, None)))  # sorted: repeats are neighbours
        del tokens
        self.events.sort(key=_BY_TIME)
        db = (_pack_apsw if apsw is not None else _pack_sqlite3)(self)
        return Staged(db, len(self.snapshots), len(self.events), self.ignored, len(self.rejects),
                      len(self.warnings), repeated)


def _check_width(width: int, rows: list) -> None:
    # one row per statement refused a row of the wrong width; flattened, a long and a short row
    # in one statement would shift columns silently, so the width is checked here (C speed)
    if rows and set(map(len, rows)) != {width}:
        raise ValueError(f"stage rows must have {width} values each, got widths {sorted(set(map(len, rows)))}")


def _tables(sink: StageSink) -> list[tuple[str, str, int, list]]:
    """(INSERT … VALUES, one row's values, row width, rows) of each stage table, in insertion order.

    apsw looks its statement cache up by the statement's text for every row of executemany, at
    about ten instructions a character: the statements are as short as SQLite allows, all of a
    table's columns in order with NULL for those a CSV does not have, no column list."""
    present = set(sink.snapshot_columns)
    if [c for c in SNAPSHOT_COLUMNS if c in present] != list(sink.snapshot_columns):
        raise ValueError(f"snapshot columns out of order: {sink.snapshot_columns}")
    snapshot = ",".join("?" if c in present else "NULL" for c in SNAPSHOT_COLUMNS)
    return [("INSERT INTO snapshot_stage VALUES", f"({snapshot})", len(sink.snapshot_columns), sink.snapshots),
            ("INSERT INTO event_stage VALUES", f"({','.join('?' * len(EVENT_COLUMNS))})", len(EVENT_COLUMNS),
             sink.events),
            ("INSERT INTO reject_stage VALUES", "(?,?,?,?,?,?)", 6, sink.rejects),
            ("INSERT INTO reject_stage VALUES", "(?,?,?,?,?,?)", 6, sink.warnings)]


def _pack_apsw(sink: StageSink) -> bytes:
    """The stage rows as a serialized SQLite database, built with apsw (one row per statement:
    apsw binds as fast that way as with many rows per statement)."""
    conn = apsw.Connection(":memory:", flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
                           | apsw.SQLITE_OPEN_NOMUTEX)
    try:
        conn.execute(STAGE_SCHEMA)
        with conn:  # one transaction
            for insert, one, width, rows in _tables(sink):
                if rows:
                    _check_width(width, rows)
                    conn.executemany(insert + one, rows)
        return conn.serialize("main")
    finally:
        conn.close()


def _pack_sqlite3(sink: StageSink) -> bytes:
    """The same with the standard library's sqlite3 (many rows per statement)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(STAGE_SCHEMA)
        for insert, one, width, rows in _tables(sink):
            _insert_rows(conn, insert, width, rows, one)
        conn.commit()
        return conn.serialize()
    finally:
        conn.close()


# Rows per INSERT statement: at most 999 parameters (SQLite's oldest default limit)
_MAX_PARAMS = 999


def _insert_rows(conn: sqlite3.Connection, insert: str, width: int, rows: list[list],
                 one: str | None = None) -> None:
    """`insert` (`INSERT INTO t (...) VALUES`) of `rows`, in order, many rows per statement;
    `one` is a row's values (`width` placeholders; by default `(?, ?, …)`).

    One statement of n rows binds as many values as n statements of one row, but is stepped,
    reset and looped over from Python once: 15-20 % less CPU for a chunk's stage rows than
    executemany of one row at a time. The rows keep their order (rowid order is the order the
    merge reads snapshot rows in)."""
    _check_width(width, rows)
    per = max(1, _MAX_PARAMS // width)
    one = one or f"({', '.join('?' * width)})"
    whole = len(rows) - len(rows) % per
    if whole:
        flat = chain.from_iterable
        conn.executemany(f"{insert} {', '.join([one] * per)}",
                         (list(flat(rows[i:i + per])) for i in range(0, whole, per)))
    if whole < len(rows):
        conn.executemany(f"{insert} {one}", rows[whole:])


def _numbered(text: str, first_line: int):
    # without a CR a line ends only at LF: str.split is half the cost of reading the text
    # through StringIO, and each line reads the same without its line end (stripped, or JSON)
    lines = text.split("\n") if "\r" not in text else io.StringIO(text, newline="")
    for number, line in enumerate(lines, start=first_line):
        if line.strip():
            yield number, line


def chunk_json_values(chunk: Chunk) -> Iterator[tuple[int, Any, str | None]]:
    """(line, value, error) of a chunk of JSON lines (a line holding an array gives its
    items), or the items of a "json-document" chunk (line 1)."""
    if chunk.fmt == LONG_LINE:
        yield chunk.first_line, None, chunk.text
        return
    if chunk.fmt == "json-document":
        try:
            value = json.loads(chunk.text)
        except (ValueError, RecursionError):
            pass  # not one document either: take it line by line, reporting each
        else:
            suspicious = may_hold_surrogates(chunk.text)
            for item in value if isinstance(value, list) else [value]:
                if suspicious and has_lone_surrogate(item):
                    yield 1, None, LONE_SURROGATE
                else:
                    yield 1, item, None
            return
    # _numbered splits text without a CR at LF (str.split), and json_values is the one place
    # that reads a JSON line (its reject wording included)
    yield from json_values(_numbered(chunk.text, chunk.first_line))


def stage_chunk(chunk: Chunk) -> Staged:
    """Parse and validate one chunk (in a worker process or in-process)."""
    sink = StageSink()
    if chunk.fmt == LONG_LINE:   # a line too long to read: its reason in `text`
        sink.reject(chunk.first_line, chunk.text, chunk.excerpt)
    elif chunk.fmt == "csv":
        assert chunk.csv_layout is not None
        stage_csv(chunk.text, chunk.csv_layout, chunk.first_line, sink)
    elif chunk.fmt == "jsonl":
        stage_listing(_numbered(chunk.text, chunk.first_line), chunk.page_id, sink)
    elif chunk.fmt in ("webhooks", "json-document"):
        stage_webhooks(chunk_json_values(chunk), sink)
    else:  # pragma: no cover - the chunker makes only the formats above
        raise ValueError(chunk.fmt)
    return sink.finish()


def stage_items(numbered_items, page_id: str | None) -> Staged:
    """Stage (number, item) pairs of `GET /<PAGE_ID>/notification_message_tokens` items."""
    sink = StageSink()
    for number, item in numbered_items:
        stage_listing_items([item], page_id, number, sink)
    return sink.finish()

"""Parse token records from the three sources a partner may have, into stage rows.

Every input record ends up in exactly one place of a `StageSink` (migrator.inventory.stage):
a snapshot row, an event row, an ignored count (an event that is not about RN tokens), or a
reject (with the line and a reason a person can act on).

- CSV exports (`page_id, token` + optional columns) and token-listing JSON are *snapshots*.
- Page webhook deliveries (`messaging_optins`, `optin.type = "notification_messages"`) are
  *events*, with a timestamp, that the workspace replays in timestamp order.

This is the hot loop of a 10M-token ingest, so each field has a fast path for the clean
values real exports carry (`isdecimal`, exact enum spellings) and falls back to the full
checks, with their error messages, for everything else.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import json
import re
import unicodedata
from datetime import datetime
from operator import methodcaller
from typing import TYPE_CHECKING, Any, Callable, Iterable

import orjson

from migrator.countries import iso_countries, normalize_country
from migrator.privacy import HASH_LEN, sha256, short_hash
from migrator.regions import zone_tables
from migrator.timeparse import MAX_MS, MS_THRESHOLD, TimeParseError, to_epoch_ms, to_epoch_seconds

if TYPE_CHECKING:
    from migrator.inventory.stage import StageSink

CSV_DELIMITERS = (",", ";", "\t", "|")
CSV_COLUMNS = (
    "page_id", "token", "psid", "topic_title", "timezone", "country", "token_status",
    "user_token_status", "token_expiry", "created_at", "next_eligible_at", "last_sent_at",
    "frequency",
)
REQUIRED_CSV = ("page_id", "token")
USER_TOKEN_STATUSES = frozenset({"REFRESHED", "NOT_REFRESHED"})
FREQUENCIES = frozenset({"DAILY", "WEEKLY", "MONTHLY"})
REOPTIN = frozenset({"ENABLED", "DISABLED"})
STATUS_EVENTS = {"STOP_NOTIFICATIONS": "stop", "RESUME_NOTIFICATIONS": "resume"}
MAX_TOKEN_LEN = 1024
MAX_ID_DIGITS = 20  # Graph ids are 64-bit integers: at most 20 digits
MIN_TIME = 1_072_915_200  # 2004-01-01T00:00:00Z: no RN or Messenger time is older
END_TIME = 4_102_444_800  # 2100-01-01T00:00:00Z
_T0, _T1 = str(MIN_TIME), str(END_TIME)  # both 10 digits: compared as text in the fast path
_M0, _M1 = str(MIN_TIME * 1000), str(END_TIME * 1000)  # the same bounds in ms: both 13 digits
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
_fromisoformat = datetime.fromisoformat
_SPACE = re.compile(r"\s")
_ZONES = frozenset(zone_tables().by_lower.values())  # every tzdata zone and link name, as spelled

# Absent values are staged as None (NULL), and a blank text as None too (text is stripped):
# the merge copies stage columns as they are. Reading '' back with nullif() cost the main
# process 1.3 s of its 4.5 s per 1M CSV rows; binding None costs no more than '' once the
# stage has registered its adapter for None (stage.py).
ABSENT = None


def _nn(value: Any) -> Any:
    return value


# Stage rows: a snapshot row has SNAPSHOT_COLUMNS, a webhook event EVENT_COLUMNS (what an
# event can say, plus what token_events keeps), in this order.
SNAPSHOT_COLUMNS = (
    "line", "token", "token_hash", "page_id", "psid", "topic_title", "payload", "timezone",
    "country", "status", "user_token_status", "reoptin", "frequency", "token_expiry",
    "created_at", "next_eligible_at", "last_sent_at",
)
EVENT_COLUMNS = (
    "token", "token_hash", "page_id", "psid", "topic_title", "payload", "timezone",
    "user_token_status", "reoptin", "frequency", "token_expiry", "ts_ms", "kind", "event_key",
    "data", "line",
)


class BadValue(ValueError):
    pass


# --- field helpers (the slow, thorough path) ------------------------------------------

def _s(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise BadValue(f"expected text, got {type(value).__name__}")
    v = str(value).strip()
    return v or None


def _has_controls(v: str) -> bool:
    """Control, format (bidi marks, zero-width) or line/paragraph separator characters."""
    return not v.isprintable() and any(unicodedata.category(c) in _CONTROL_CATEGORIES for c in v)


def _token(value: Any) -> str:
    v = _s(value)
    if not v:
        raise BadValue("missing token")
    if len(v) > MAX_TOKEN_LEN or _SPACE.search(v):
        raise BadValue("token is not a plausible notification_messages_token")
    if _has_controls(v):
        raise BadValue("token holds control or text-direction characters (not a "
                       "notification_messages_token)")
    return v


def _id(value: Any, name: str, *, required: bool = False) -> str | None:
    if isinstance(value, bool):
        raise BadValue(f"{name} must be an id, got {value!r}")
    if isinstance(value, int):
        value = str(value)
    v = _s(value)
    if v is None:
        if required:
            raise BadValue(f"missing {name}")
        return None
    if len(v) > 64 or _SPACE.search(v) or _has_controls(v):
        raise BadValue(f"{name} {v[:40]!r} is not an id")
    return v


def _page_id(value: Any, name: str = "page_id", *, required: bool = True) -> str | None:
    """A Page id: ASCII digits (not zero, no sign, no leading zero, at most 20 digits).

    ASCII letters are tolerated beside digits (test estates and some partners' exports key
    pages as `P1`); anything else (full-width digits, NUL, markup, a sign, spaces) is not.
    """
    v = _id(value, name, required=required)
    if v is None:
        return None
    digits = v.isdecimal()
    if (not (v.isascii() and v.isalnum()) or not v.strip("0")
            or (digits and (v[0] == "0" or len(v) > MAX_ID_DIGITS))):
        raise BadValue(f"{name} {v[:40]!r} is not a Page id (plain digits 0-9, not zero, "
                       f"no sign or leading zero, at most {MAX_ID_DIGITS} digits)")
    return v


def _in_range(t: int | None, value: Any, name: str) -> int | None:
    if t is not None and not (MIN_TIME <= t < END_TIME):
        raise BadValue(f"{name} {str(value)[:40]!r} is outside 2004-01-01 .. 2100-01-01 "
                       "(ISO 8601, epoch seconds or epoch milliseconds)")
    return t


def _time(value: Any, name: str) -> int | None:
    try:
        t = to_epoch_seconds(value)
    except TimeParseError as exc:
        raise BadValue(f"{name}: {exc}") from None
    return _in_range(t, value, name)


def _time_text(v: str, name: str) -> int | None:
    """_time for CSV text, with fast paths for epoch milliseconds and `...T03:04:05Z`."""
    if len(v) <= 15 and v.isascii() and v.isdecimal():  # timeparse: above 1e11 is milliseconds
        n = int(v)
        return _in_range(n if n <= MS_THRESHOLD else n // 1000, v, name)
    if len(v) == 20 and v[19] == "Z" and v[10] == "T":
        try:
            return _in_range(int(_fromisoformat(v).timestamp()), v, name)  # 3.11 reads Z as UTC
        except ValueError:
            pass
    return _time(v, name)


def _time_w(v: str, name: str, warn: list) -> Any:
    """A CSV time column past its inline fast path (the generated converter's fallback):
    `...T03:04:05Z` inline, else the thorough parse; a bad value becomes a warning."""
    if len(v) == 20 and v[19] == "Z" and v[10] == "T":
        try:
            t = int(_fromisoformat(v).timestamp())  # Python 3.11 reads the Z as UTC
            if MIN_TIME <= t < END_TIME:
                return t
        except ValueError:
            pass
    try:
        t = _time_text(v, name)
    except BadValue as exc:
        warn.append((name, v, str(exc)))
        return ABSENT
    return ABSENT if t is None else t


def _w(fn: Callable, v: Any, column: str, warn: list, *args: Any) -> Any:
    """An optional field through its thorough check; a bad value becomes a warning (the
    record is kept without it) instead of losing the subscriber."""
    try:
        return _nn(fn(v, *args))
    except BadValue as exc:
        warn.append((column, v, str(exc)))
        return ABSENT


def _zone(value: Any) -> str | None:
    """A time zone name tzdata knows (any case; kept as tzdata spells it). Anything else is a BadValue, so the record is
    kept without it and a warning names the file, line and value: an unknown zone (`Mars/Olympus`)
    places nobody (the region is unknown either way) and one with control or text-direction
    characters cannot be shown or used safely."""
    v = _s(value)
    if v is None:
        return None
    if _has_controls(v):
        raise BadValue(f"time zone {v[:40]!r} holds control or text-direction characters")
    proper = zone_tables().by_lower.get(v.lower())
    if proper is None:
        raise BadValue(f"time zone {v[:40]!r} is not a time zone name tzdata knows (IANA, e.g. "
                       "Europe/London): no region can be inferred from it")
    return proper   # as tzdata spells it: zoneinfo (the send window) is case-sensitive, regions are not


def _zone_text(v: Any, name: str, warn: list) -> Any:
    """_zone for a JSON value, staged: a known name as written is kept as is (the fast path)."""
    if type(v) is str and v in _ZONES:
        return v
    return ABSENT if v is None else _w(_zone, v, name, warn)


def _enum(value: Any, name: str, allowed: frozenset[str]) -> str | None:
    v = _s(value)
    if v is None:
        return None
    u = v.upper().replace(" ", "_")
    if u not in allowed:
        raise BadValue(f"{name} {v!r} is not one of {', '.join(sorted(allowed))}")
    return u


def _country(value: Any) -> str | None:
    try:
        return normalize_country(_s(value))
    except ValueError as exc:
        raise BadValue(str(exc)) from None


def _status(value: Any) -> str | None:
    v = _s(value)
    if v is None:
        return None
    st = v.lower()
    if st not in ("active", "stopped"):
        raise BadValue(f"token_status {v!r} is not active or stopped")
    return st


def _excerpt(text: str) -> str:
    return text.strip()[:200]


# --- CSV -----------------------------------------------------------------------------------
#
# A CSV row is converted by a function generated for the file's header (as namedtuple and
# dataclasses generate theirs): each present column is one inline fast-path expression for
# the clean values real exports carry, falling back to the thorough helper above, which
# also gives the error message; columns the file lacks are not staged at all. This is the hot loop of a
# 10M-token ingest: the generated code is 2-3x faster than a loop over converter functions.

# column -> (stage slot, fast-path expression of the non-empty text `v`); the fallback
# `_w(...)` runs the thorough check and turns a bad value into a warning in `warn`.
def _time_expr(col: str) -> str:
    # ten ASCII digits between 2004 and 2100 are clean epoch seconds, thirteen clean epoch
    # milliseconds (timeparse reads 13 digits as ms: both bounds have 13 digits, so the range
    # is a text comparison); anything else the full parse. Clean seconds are staged as their
    # text, milliseconds as their first ten digits (the seconds, floored, as // 1000 gives):
    # the stage column's INTEGER affinity stores them as the integer (stage.py). Only ASCII
    # digits may go that way (isdecimal() also accepts other scripts' digits, which int() reads
    # and SQLite would keep as text); str.isascii() is a flag test, no scan.
    return (f"v if len(v) == 10 and _T0 <= v < _T1 and v.isascii() and v.isdecimal() "
            f"else v[:10] if len(v) == 13 and _M0 <= v < _M1 and v.isascii() and v.isdecimal() "
            f"else _time_w(v, '{col}', warn)")


# Columns with few distinct values (pages, titles, zones, countries, statuses) are looked up in
# a dict of the values already accepted, which returns one shared object per value: a chunk's
# rows then hold one string per distinct value instead of one per row (a third less memory a
# row, which a worker otherwise faults in afresh for every chunk, ~2 us a page), and the lookup
# costs no more than the check it replaces. A value not in the dict takes the check as before.
_CACHE_MAX = 4096  # distinct values remembered per column (a bound, not a correctness limit)
_CACHE_CHARS = 256  # and only values this short: 4,096 titles of 64 KB would hold 256 MB


def _as_is(values) -> dict[str, str]:
    return {v: v for v in values}


def _titled(cache: dict, v: str) -> str | None:
    """A title as staged (stripped, or None when blank), remembered in `cache`."""
    t = v.strip() or None
    if t is not None and len(v) <= _CACHE_CHARS and len(cache) < _CACHE_MAX:
        cache[v] = t
    return t


_CSV_FAST = {
    "psid": ("psid", "v if len(v) <= 64 and v.isascii() and v.isdecimal() else _w(_id, v, 'psid', warn, 'psid')"),
    # free text is kept as written (right-to-left titles carry direction marks): reports
    # isolate it and CSV exports neutralise it (migrator.outputs)
    "topic_title": ("topic_title", "_TITLES.get(v) or _titled(_TITLES, v)"),
    "timezone": ("timezone", "_ZONE_OF.get(v) or _w(_zone, v, 'timezone', warn)"),
    "country": ("country", "_ISO_OF.get(v) or _w(_country, v, 'country', warn)"),
    "token_status": ("status", "_STATUS_OF.get(v) or _w(_status, v, 'token_status', warn)"),
    "user_token_status": ("user_token_status",
                          "_UTS_OF.get(v) or "
                          "_w(_enum, v, 'user_token_status', warn, 'user_token_status', _USER_TOKEN_STATUSES)"),
    "frequency": ("frequency", "_FREQ_OF.get(v) or "
                               "_w(_enum, v, 'frequency', warn, 'frequency', _FREQUENCIES)"),
    "token_expiry": ("token_expiry", _time_expr("token_expiry")),
    "created_at": ("created_at", _time_expr("created_at")),
    "next_eligible_at": ("next_eligible_at", _time_expr("next_eligible_at")),
    "last_sent_at": ("last_sent_at", _time_expr("last_sent_at")),
}


def _bad(bad: list | None, exc: BadValue) -> list:
    bad = bad or []
    bad.append(str(exc))
    return bad


_PAGE_CACHE: dict[str, str] = {}
_TITLE_CACHE: dict[str, str] = {}
_ZONE_OF = _as_is(_ZONES)
_ISO_OF = _as_is(iso_countries())


# every column through its thorough helper alone, for _compile_csv_row(thorough=True): the
# oracle the tests hold the fast paths above to
_THOROUGH = {
    "psid": "_w(_id, v, 'psid', warn, 'psid')",
    "topic_title": "v.strip() or None",
    "timezone": "_w(_zone, v, 'timezone', warn)",
    "country": "_w(_country, v, 'country', warn)",
    "token_status": "_w(_status, v, 'token_status', warn)",
    "user_token_status": "_w(_enum, v, 'user_token_status', warn, 'user_token_status', _USER_TOKEN_STATUSES)",
    "frequency": "_w(_enum, v, 'frequency', warn, 'frequency', _FREQUENCIES)",
    **{c: f"_w(_time, v, '{c}', warn, '{c}')" for c in ("token_expiry", "created_at", "next_eligible_at", "last_sent_at")},
}


_V = re.compile(r"\bv\b")  # the field's text in the expressions above


def _compile_csv_row(header: list[str], *, thorough: bool = False) -> tuple[
        Callable[[list[str], int, list], list], Callable, tuple[str, ...]]:
    """`row_to_stage(row, line, warn)` for this header, `stage_rows(numbered_rows, append,
    slow)` (the same over many rows), and the stage columns their rows fill.

    Only the columns the file has are staged (the others stay NULL): fewer values to bind.
    A bad required field (page_id, token) raises BadValue naming every bad field of the row;
    a bad optional field is staged empty and appended to `warn` as (column, value, reason).
    `thorough` leaves out every fast path (the tests' oracle).
    """
    col = {}
    for i, name in enumerate(header):
        col.setdefault(name, i)
    used = {col["token"], col["page_id"], *(col[n] for n in _CSV_FAST if n in col)}
    # the row's fields as locals in one UNPACK (the width is checked before): a quarter fewer
    # bytecodes a row than indexing the list once per column
    unpack = f"    {', '.join(f'c{i}' if i in used else '_' for i in range(len(header)))}, = row"
    body = [
        "def row_to_stage(row, line, warn):",
        "    bad = None",
        unpack,
        f"    token = c{col['token']}",
        # an ASCII token's bytes are its UTF-8, hashed below; bytes.isalnum is str.isalnum on
        # ASCII at a quarter of the cost (a lookup table, not the Unicode database)
        f"    if not (len(token) <= {MAX_TOKEN_LEN} and token.isascii() and (tb := token.encode()).isalnum()):",
        "        try:",
        "            token = _token(token)",
        "            tb = token.encode('utf-8', 'surrogatepass')",
        "        except _BadValue as exc:",
        "            bad = _bad(bad, exc)",
        f"    page = c{col['page_id']}",
        "    pg = _PAGES.get(page)",
        "    if pg is not None:",
        "        page = pg",
        f"    elif len(page) <= {MAX_ID_DIGITS} and page.isascii() and page.isdecimal() and page[0] != '0':",
        f"        if len(_PAGES) < {_CACHE_MAX}:",
        "            _PAGES[page] = page",
        "    else:",
        "        try:",
        "            page = _page_id(page)",
        "        except _BadValue as exc:",
        "            bad = _bad(bad, exc)",
    ]
    # token_hash is privacy.short_hash, inlined
    values = {"line": "line", "token": "token", "page_id": "page",
              "token_hash": f"_sha256(tb).hexdigest()[:{HASH_LEN}]"}
    tail = ["    if bad is not None:",
            "        raise _BadValue('; '.join(bad))"]
    if thorough:
        body = ["def row_to_stage(row, line, warn):",
                "    bad = None",
                unpack,
                "    try:",
                f"        token = _token(row[{col['token']}])",
                "        tb = token.encode('utf-8', 'surrogatepass')",
                "    except _BadValue as exc:",
                "        bad = _bad(bad, exc)",
                "    try:",
                f"        page = _page_id(row[{col['page_id']}])",
                "    except _BadValue as exc:",
                "        bad = _bad(bad, exc)"]
    for name, (slot, expr) in _CSV_FAST.items():
        expr = _THOROUGH[name] if thorough else expr
        if name in col:
            # the expression reads the field's own local (`v` renamed): no `v = cN` a column a row
            field = f"c{col[name]}"
            body.append(f"    {slot} = ({_V.sub(field, expr)}) if {field} else None")
            values[slot] = slot
    columns = tuple(c for c in SNAPSHOT_COLUMNS if c in values)
    # a tuple: one allocation a row where a list takes two
    staged = f"({', '.join(values[c] for c in columns)},)"
    # the same checks as a loop over a chunk's rows, for the plain path (no per-row calls):
    # a row of another width, with a bad required field or with a warning goes to `slow`
    # (stage_csv's record handler, which converts it again with row_to_stage and reports it)
    loop = ["def stage_rows(numbered, append, slow):",
            "    warn = []",
            "    for line, row in numbered:",
            f"        if len(row) != {len(header)}:",
            "            slow(row, line)",
            "            continue",
            *("    " + b for b in body[1:]),
            "        if bad is not None or warn:",
            "            warn.clear()",
            "            slow(row, line)",
            "            continue",
            f"        append({staged})"]
    body += tail
    body.append(f"    return {staged}")
    namespace = {"_w": _w, "_token": _token, "_id": _id, "_page_id": _page_id,
                 "_time_w": _time_w, "_time": _time, "_enum": _enum, "_country": _country,
                 "_status": _status, "_bad": _bad, "_BadValue": BadValue,
                 "_sha256": sha256,
                 "_USER_TOKEN_STATUSES": USER_TOKEN_STATUSES, "_T0": _T0, "_T1": _T1,
                 "_M0": _M0, "_M1": _M1,
                 "_FREQUENCIES": FREQUENCIES, "_zone": _zone,
                 # the per-column dicts of accepted values (module-wide: a worker keeps them
                 # from chunk to chunk; pages and titles fill as they are seen, up to _CACHE_MAX)
                 "_PAGES": _PAGE_CACHE, "_TITLES": _TITLE_CACHE, "_titled": _titled,
                 "_ZONE_OF": _ZONE_OF, "_ISO_OF": _ISO_OF, "_STATUS_OF": _as_is(("active", "stopped")),
                 "_UTS_OF": _as_is(USER_TOKEN_STATUSES), "_FREQ_OF": _as_is(FREQUENCIES)}
    exec("\n".join(body), namespace)  # noqa: S102 - code built above from constants only
    exec("\n".join(loop), namespace)  # noqa: S102 - the same
    return namespace["row_to_stage"], namespace["stage_rows"], columns


def detect_delimiter(line: str) -> str:
    """The delimiter of a CSV header line: the most frequent of , ; TAB | outside quotes
    (a comma when none occurs: a one-column header)."""
    outside = "".join(line.split('"')[::2])
    counts = {d: outside.count(d) for d in CSV_DELIMITERS}
    best = max(CSV_DELIMITERS, key=lambda d: counts[d])  # ties: the order above
    return best if counts[best] else ","


class CsvLayout:
    """Where each known column sits in a CSV with this header (unknown columns are ignored),
    and the file's delimiter."""

    def __init__(self, header: list[str], delimiter: str = ","):
        self.header = header
        self.delimiter = delimiter
        self.width = len(header)
        self.missing = [c for c in REQUIRED_CSV if c not in header]
        self.row_to_stage, self.stage_rows, self.columns = \
            (None, None, ()) if self.missing else _compile_csv_row(header)

    def __reduce__(self):  # pickled by its header: the converter is rebuilt, not sent
        return (_csv_layout, (tuple(self.header), self.delimiter))

    @staticmethod
    def from_line(text: str, delimiter: str | None = None) -> "CsvLayout":
        delimiter = delimiter or detect_delimiter(text)
        row = next(csv.reader([text], delimiter=delimiter), [])
        return CsvLayout([c.strip().lstrip("\ufeff").lower() for c in row], delimiter)


@functools.lru_cache(maxsize=16)
def _csv_layout(header: tuple[str, ...], delimiter: str) -> CsvLayout:
    """The layout of a header, built once per process: a worker unpickles one with every chunk,
    and generating and compiling its converter took 2 ms each time."""
    return CsvLayout(list(header), delimiter)


# A quoted field may hold line breaks (a CRM's notes column), but one that never closes would
# swallow every later row: a field is bounded (csv raises past the limit) and a record spread
# over several lines must read as well-formed RFC 4180 on its own, else it is rejected at the
# line where its quote opened and reading resumes on the next line.
MAX_FIELD_CHARS = 64 * 1024
_UNCLOSED = ("a quoted field opened on this line is never closed (it runs to the end of the "
             "file, into a later row, or past 64 KB); the rows after it are read from the next line")


def _field_limit_reason(lines: list[str], at: int, delimiter: str) -> str:
    """Why csv stopped at a field past MAX_FIELD_CHARS in the record starting at `lines[at]`:
    a field that long which does close (say so, and how long it is), or a quote that never does.
    Read once more without the limit (the chunk is bounded), strictly: a clean record means the
    field closes."""
    rest = lines[at:]
    used = 0

    def feed():
        nonlocal used
        for line in rest:
            used += 1
            yield line

    old = csv.field_size_limit()
    csv.field_size_limit(max(old, sum(map(len, rest)) + 1))
    try:
        row = next(csv.reader(feed(), delimiter=delimiter, strict=True), None)
    except csv.Error:
        row = None
    finally:
        csv.field_size_limit(old)
    longest = max(map(len, row), default=0) if row else 0
    if longest <= MAX_FIELD_CHARS:
        return _UNCLOSED
    below = f"{used - 1} line below" if used == 2 else f"{used - 1} lines below"
    where = "on this line" if used <= 1 else f"opened on this line (its quote closes {below})"
    return (f"a field {where} is {longest:,} characters long, longer than the {MAX_FIELD_CHARS:,} a field "
            "may hold; the rows after it are read from the next line")


def set_field_limit() -> None:
    """csv's per-field limit, in this process (workers call it too)."""
    if csv.field_size_limit() != MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)


def _well_formed(lines: list[str], delimiter: str) -> bool:
    """True when `lines` (one multi-line record) parse as exactly one strict CSV record."""
    try:
        rows = list(csv.reader(lines, delimiter=delimiter, strict=True))
    except csv.Error:
        return False
    return len(rows) == 1


def csv_records(text: str, delimiter: str, first_line: int = 1):
    """(line, row, None) for each record of `text`, or (line, None, reason) for a record
    refused with the rules of stage_csv (a runaway quote is rejected where it opened and
    reading resumes on the next line). For small files (pages)."""
    for line, row, reason, _raw in _csv_reads(text, delimiter, first_line):
        yield line, row, reason


def _csv_reads(text: str, delimiter: str, first_line: int):
    """csv.reader over `text` with the rules both csv_records and stage_csv follow: (line, row,
    None, None) for a record; (line, None, reason, raw line or None) for a refused one."""
    set_field_limit()
    lines: list[str] | None = None  # the text's lines, split only when a record spans several
    offsets: list[int] = []
    start = 0  # index of the line the current reader starts at
    while True:
        src = io.StringIO(text, newline="")
        if start:
            src.seek(offsets[start])
        reader = csv.reader(src, delimiter=delimiter)
        base = first_line - 1 + start
        prev = 0  # reader lines consumed by the records before this one
        restart = None
        try:
            for row in reader:
                n = reader.line_num
                if n != prev + 1:  # a record over several lines: a quoted line break, or a runaway
                    if lines is None:
                        lines, offsets = _lines_and_offsets(text)
                    if not _well_formed(lines[start + prev:start + n], delimiter):
                        yield base + prev + 1, None, _UNCLOSED, lines[start + prev]
                        restart = start + prev + 1
                        break
                line = base + prev + 1
                prev = n
                yield line, row, None, None
        except csv.Error as exc:  # a field past the limit: reject where its record began
            if lines is None:
                lines, offsets = _lines_and_offsets(text)
            at = start + prev
            reason = (_field_limit_reason(lines, at, delimiter) if "field larger" in str(exc)
                      else f"malformed CSV ({exc})")
            yield base + prev + 1, None, reason, lines[at] if at < len(lines) else None
            restart = at + 1
        if restart is None or restart >= len(lines or ()):
            return
        start = restart


def _plain_lines(text: str) -> list[str] | None:
    """The lines of `text` when csv would read each as one record split at the delimiter: no
    quote character (nothing is quoted, no record spans lines), no CR (csv ends a line there
    too) and no line longer than a field may be. Exports without quoting, the common case,
    then skip csv's per-character state machine: `str.split` is 3-4x cheaper per row. A final
    empty line (after the last newline) is one csv does not yield; it is skipped as blank."""
    if '"' in text or "\r" in text:
        return None
    lines = text.split("\n")
    if max(map(len, lines)) > MAX_FIELD_CHARS:
        return None
    return lines


def _csv_reject(sink: "StageSink", line: int, row: list[str], delimiter: str, exc: BadValue,
                warn: list) -> None:
    """A row with a bad required field: rejected (unless blank), naming every bad field."""
    if any(c.strip() for c in row):
        reason = "; ".join([str(exc)] + [w[2] for w in warn])
        sink.reject(line, reason, _excerpt(delimiter.join(row)))
    warn.clear()


def _csv_warn(sink: "StageSink", line: int, row: list[str], delimiter: str, warn: list) -> None:
    for column, value, reason in warn:
        sink.warn(line, f"{reason}: kept the record without {column}",
                  _excerpt(delimiter.join(row)), column, value)
    warn.clear()


def _csv_width(sink: "StageSink", line: int, row: list[str], delimiter: str, width: int) -> None:
    sink.reject(line, f"expected {width} columns, found {len(row)}", _excerpt(delimiter.join(row)))


def _lines_and_offsets(text: str) -> tuple[list[str], list[int]]:
    """The text's physical lines (line breaks kept) and each line's start offset, for re-reading."""
    lines = io.StringIO(text, newline="").readlines()
    return lines, list(itertools.accumulate((len(x) for x in lines), initial=0))


def stage_csv(text: str, layout: CsvLayout, first_line: int, sink: "StageSink") -> None:
    """Stage the CSV records of `text` (whole records; its first line is `first_line`)."""
    set_field_limit()
    delimiter = layout.delimiter
    width, row_to_stage = layout.width, layout.row_to_stage
    snapshots = sink.snapshots
    sink.snapshot_columns = layout.columns
    warn: list = []

    def take(row: list[str], line: int) -> None:
        """One record, whichever reader split it: staged, rejected, warned about or too narrow."""
        if len(row) == width:
            try:
                snapshots.append(row_to_stage(row, line, warn))
            except BadValue as exc:
                _csv_reject(sink, line, row, delimiter, exc, warn)
                return
            if warn:
                _csv_warn(sink, line, row, delimiter, warn)
        elif any(c.strip() for c in row):
            _csv_width(sink, line, row, delimiter, width)

    plain = _plain_lines(text)
    if plain is not None:  # no quote, no CR, no field past the limit: a record is a line
        layout.stage_rows(enumerate(map(methodcaller("split", delimiter), plain), first_line),
                          snapshots.append, take)
        return
    for line, row, reason, raw in _csv_reads(text, delimiter, first_line):
        if reason is None:
            take(row, line)
        else:
            sink.reject(line, reason, _excerpt(raw) if raw is not None else None)


# --- token listing JSON ----------------------------------------------------------------

def listing_row(item: Any, page_id: str | None, line: int, warn: list) -> list:
    """Map one `notification_message_tokens` item
    (https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/get-subscription-tokens)
    to a snapshot stage row.

    A bad token or page id raises BadValue (naming both when both are bad); a bad optional
    field is left empty and appended to `warn`.
    """
    if not isinstance(item, dict):
        raise BadValue(f"expected a token object, got {type(item).__name__}")
    bad = None
    pid = None
    try:
        pid = _page_id(item.get("page_id"), required=False) or page_id
        if pid is None:
            raise BadValue("no page_id (the listing dump lacks it: add a page_id field or pass --page-id)")
    except BadValue as exc:
        bad = _bad(bad, exc)
    try:
        token = _token(item.get("notification_messages_token"))
    except BadValue as exc:
        bad = _bad(bad, exc)
    if bad is not None:
        raise BadValue("; ".join(bad))
    g = item.get
    return [
        line, token, short_hash(token), pid,
        _w(_id, g("recipient_id"), "recipient_id", warn, "recipient_id"),
        _w(_s, g("topic_title"), "topic_title", warn),
        ABSENT,  # payload: not in the listing
        _zone_text(g("notification_messages_timezone"), "notification_messages_timezone", warn),
        ABSENT,  # country
        ABSENT,  # status: the listing has only active tokens, and says nothing of stops
        _w(_enum, g("user_token_status"), "user_token_status", warn, "user_token_status", USER_TOKEN_STATUSES),
        _w(_enum, g("notification_messages_reoptin"), "notification_messages_reoptin", warn,
           "notification_messages_reoptin", REOPTIN),
        _w(_enum, g("notification_messages_frequency"), "notification_messages_frequency", warn,
           "notification_messages_frequency", FREQUENCIES),
        _w(_time, g("token_expiry_timestamp"), "token_expiry_timestamp", warn, "token_expiry_timestamp"),
        _w(_time, g("creation_timestamp"), "creation_timestamp", warn, "creation_timestamp"),
        _w(_time, g("next_eligible_time"), "next_eligible_time", warn, "next_eligible_time"),
        ABSENT,  # last_sent_at
    ]


def _json_excerpt(obj: Any) -> str | None:
    try:
        return _excerpt(json.dumps(obj, default=str, ensure_ascii=False)[:400])
    except (RecursionError, ValueError, TypeError):
        return "(nested too deep to show)"


def _warn_all(sink: "StageSink", line: int, warn: list, excerpt: Callable[[], str | None]) -> None:
    for column, value, reason in warn:
        sink.warn(line, f"{reason}: kept the record without {column}", excerpt(), column, value)
    warn.clear()


def stage_listing_items(items: Iterable[Any], page_id: str | None, line: int,
                        sink: "StageSink") -> None:
    warn: list = []
    for item in items:
        try:
            sink.snapshots.append(listing_row(item, page_id, line, warn))
        except BadValue as exc:
            reason = "; ".join([str(exc)] + [w[2] for w in warn])
            warn.clear()
            sink.reject(line, reason, _json_excerpt(item))
            continue
        if warn:
            _warn_all(sink, line, warn, lambda: _json_excerpt(item))


def stage_listing(lines: Iterable[tuple[int, str]], page_id: str | None, sink: "StageSink") -> None:
    """Token-listing dumps: one item per line, or whole response pages {"data": [...]}."""
    for number, text in lines:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            sink.reject(number, f"not JSON ({exc.msg})", _excerpt(text))
            continue
        if isinstance(obj, dict) and isinstance(obj.get("data"), list):
            stage_listing_items(obj["data"], _safe_id(obj.get("page_id")) or page_id, number, sink)
        elif isinstance(obj, list):
            stage_listing_items(obj, page_id, number, sink)
        elif isinstance(obj, dict) and "notification_messages_token" in obj:
            stage_listing_items([obj], page_id, number, sink)
        else:
            sink.reject(number, "not a token-listing item or page (no notification_messages_token or data)",
                        _excerpt(text))


def _safe_id(value: Any) -> str | None:
    try:
        return _page_id(value, required=False)
    except BadValue:
        return None


# --- webhooks --------------------------------------------------------------------------

def json_values(lines: Iterable[tuple[int, str]]) -> Iterable[tuple[int, Any, str | None]]:
    """Yield (line, value, error) for JSON-lines input; a JSON array line yields its items."""
    for number, text in lines:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield number, None, f"not JSON ({exc.msg})"
            continue
        if isinstance(obj, list):
            for item in obj:
                yield number, item, None
        else:
            yield number, obj, None


def stage_webhooks(values: Iterable[tuple[int, Any, str | None]], sink: "StageSink") -> None:
    """Page webhook deliveries; one record per messaging event (or per entry without any)."""
    append = sink.events.append
    for lineno, obj, error in values:
        if error is not None:
            sink.reject(lineno, error)
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("entry"), list):
            sink.reject(lineno, 'not a webhook delivery (expected {"object": "page", "entry": [...]})',
                        _json_excerpt(obj))
            continue
        if obj.get("object") not in (None, "page"):
            sink.ignored += len(obj["entry"])
            continue
        for entry in obj["entry"]:
            if not isinstance(entry, dict):
                sink.reject(lineno, "entry is not an object")
                continue
            events = entry.get("messaging")
            if not isinstance(events, list):
                sink.ignored += 1
                continue
            for ev in events:
                # The clean shape real deliveries carry, checked inline (no helper calls): every
                # test below is the first, fast test of the thorough path in _stage_event, so
                # an event passing them all is staged exactly as _stage_event stages it; any
                # other event (or one whose optin cannot be dumped) goes to _stage_event,
                # which decides it from scratch (nothing is staged for it here).
                if type(ev) is dict:
                    optin = ev.get("optin")
                    if type(optin) is dict and optin.get("type") == "notification_messages":
                        sender = ev.get("sender")
                        recipient = ev.get("recipient")
                        ts_ms = ev.get("timestamp")
                        status = optin.get("notification_messages_status")
                        kind = "optin" if status is None else \
                            _STATUS_EXACT.get(status) if type(status) is str else None
                        token = optin.get("notification_messages_token")
                        if (kind is not None and type(sender) is dict and type(recipient) is dict
                                and type(ts_ms) is int and _MIN_MS <= ts_ms < _END_MS
                                and _is_token(token)):
                            page_id = recipient.get("id")
                            psid = sender.get("id")
                            if _is_page_id(page_id) and _is_id(psid):
                                row = _clean_event_row(optin, token, page_id, psid, ts_ms, kind, lineno)
                                if row is not None:
                                    append(row)
                                    continue
                _stage_event(lineno, entry, ev, sink)


def event_key(token: str, page_id: str | None, psid: str | None, ts_ms: int, kind: str,
              data: str) -> str:
    """Identity of a webhook event: a redelivery of the same event has the same key."""
    return event_key_raw(token, page_id, psid, ts_ms, kind, data.encode("utf-8", "surrogatepass"))


def event_key_raw(token: str, page_id: str | None, psid: str | None, ts_ms: int, kind: str,
                  data: bytes) -> str:
    """event_key of `data` already encoded as UTF-8 (orjson's output as it is: UTF-8 encoding
    is concatenative, so this is byte for byte the key of the decoded text)."""
    head = f"{token}\x1f{page_id}\x1f{psid}\x1f{ts_ms}\x1f{kind}\x1f".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(head + data, digest_size=16).hexdigest()


def _text(v: Any, name: str, warn: list) -> Any:
    """_s for a JSON value, staged: a plain string is only stripped (None when blank)."""
    if type(v) is str:
        return v.strip() or None
    return ABSENT if v is None else _w(_s, v, name, warn)


def _event_enum(v: Any, name: str, allowed: frozenset[str], warn: list) -> Any:
    if type(v) is str and v in allowed:
        return v
    return ABSENT if v is None else _w(_enum, v, name, warn, name, allowed)


_MIN_MS, _END_MS = MIN_TIME * 1000, END_TIME * 1000


def _event_time(v: Any, name: str, warn: list) -> Any:
    if type(v) is int:  # epoch seconds or milliseconds (timeparse rule), 2004 .. 2100
        if MIN_TIME <= v < END_TIME:
            return v
        if _MIN_MS <= v < _END_MS:
            return v // 1000
    return ABSENT if v is None else _w(_time, v, name, warn, name)


_EVENT_WARN: list = []


def _is_token(v: Any) -> bool:
    """The fast check of a webhook's subscription token (the thorough one is _token)."""
    return type(v) is str and len(v) <= MAX_TOKEN_LEN and v.isalnum()


def _is_id(v: Any) -> bool:
    return type(v) is str and len(v) <= 64 and v.isascii() and v.isdecimal()


def _is_page_id(v: Any) -> bool:
    return (type(v) is str and len(v) <= MAX_ID_DIGITS and v.isascii() and v.isdecimal()
            and v[0] != "0")


_STATUS_EXACT = {"STOP_NOTIFICATIONS": "stop", "RESUME_NOTIFICATIONS": "resume"}  # as _stage_event maps them
_dumps = orjson.dumps
_OPT_SORT_KEYS = orjson.OPT_SORT_KEYS


def _clean_event_row(optin: dict, token: str, page_id: str, psid: str, ts_ms: int, kind: str,
                     lineno: int) -> list | None:
    """The stage row of an event whose required fields passed stage_webhooks' inline checks,
    when every optional field is clean too (as _stage_event's helpers take them without a
    warning); None sends the event to _stage_event (a field to warn about, an optin that
    cannot be dumped)."""
    try:
        raw = _dumps(optin, option=_OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None
    data = raw.decode()
    token_hash = short_hash(token)
    key = event_key_raw(token, page_id, psid, ts_ms, kind, raw)   # orjson's UTF-8, not encoded again
    if kind != "optin":
        return [token, token_hash, page_id, psid, ABSENT, ABSENT, ABSENT, ABSENT,
                ABSENT, ABSENT, ABSENT, ts_ms, kind, key, data, lineno]
    g = optin.get
    title = g("title")
    if type(title) is str:
        title = title.strip() or None
    elif title is not None:
        return None
    payload = g("payload")
    if type(payload) is str:
        payload = payload.strip() or None
    elif payload is not None:
        return None
    zone = g("notification_messages_timezone")
    if zone is not None and not (type(zone) is str and zone in _ZONES):
        return None
    uts = g("user_token_status")
    if uts is not None and not (type(uts) is str and uts in USER_TOKEN_STATUSES):
        return None
    reoptin = g("notification_messages_reoptin")
    if reoptin is not None and not (type(reoptin) is str and reoptin in REOPTIN):
        return None
    freq = g("notification_messages_frequency")
    if freq is not None and not (type(freq) is str and freq in FREQUENCIES):
        return None
    expiry = g("token_expiry_timestamp")
    if expiry is not None:
        if type(expiry) is not int:
            return None
        if not (MIN_TIME <= expiry < END_TIME):
            if _MIN_MS <= expiry < _END_MS:
                expiry //= 1000
            else:
                return None
    return [token, token_hash, page_id, psid, title, payload, zone, uts, reoptin, freq, expiry,
            ts_ms, kind, key, data, lineno]


def _stage_event(lineno: int, entry: dict, ev: Any, sink: "StageSink") -> None:
    """One messaging event; clean values take the fast checks, the rest the thorough ones."""
    if not isinstance(ev, dict):
        sink.reject(lineno, "messaging event is not an object")
        return
    optin = ev.get("optin")
    if not isinstance(optin, dict) or optin.get("type") != "notification_messages":
        sink.ignored += 1
        return
    warn = _EVENT_WARN  # reused: cleared by _warn_all (this runs in one thread per process)
    try:
        sender = ev.get("sender")
        recipient = ev.get("recipient")
        sender = sender if isinstance(sender, dict) else {}
        recipient = recipient if isinstance(recipient, dict) else {}
        page_id = recipient.get("id")
        if not _is_page_id(page_id):
            page_id = (_page_id(page_id, "recipient.id", required=False)
                       or _page_id(entry.get("id"), "entry.id", required=False))
            if page_id is None:
                raise BadValue("no page id (recipient.id or entry.id)")
        ts_raw = ev.get("timestamp", entry.get("time"))
        if type(ts_raw) is int and _MIN_MS <= ts_raw < _END_MS:
            ts_ms = ts_raw
        else:
            if ts_raw is None:
                raise BadValue("no timestamp")
            try:
                ts_ms = to_epoch_ms(ts_raw)
            except TimeParseError as exc:
                raise BadValue(f"timestamp: {exc}") from None
            if ts_ms is None:  # a blank string
                raise BadValue("no timestamp")
            _in_range(ts_ms // 1000, ts_raw, "timestamp")
        status_raw = optin.get("notification_messages_status")
        if status_raw is None:
            kind = "optin"
        else:
            status_raw = _s(status_raw)
            kind = "optin" if status_raw is None else STATUS_EVENTS.get(status_raw.upper().replace(" ", "_"))
            if kind is None:
                raise BadValue(f"notification_messages_status {status_raw!r} is not "
                               "STOP_NOTIFICATIONS or RESUME_NOTIFICATIONS")
        token = optin.get("notification_messages_token")
        if not _is_token(token):
            token = _token(token)
        psid = sender.get("id")
        if not _is_id(psid):
            psid = _id(psid, "sender.id")
        try:
            data = orjson.dumps(optin, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits
            raise BadValue(f"the optin object cannot be stored: {exc}") from None
        if kind == "optin":
            row = [token, short_hash(token), page_id, _nn(psid), _text(optin.get("title"), "title", warn),
                   _text(optin.get("payload"), "payload", warn),
                   _zone_text(optin.get("notification_messages_timezone"), "notification_messages_timezone", warn),
                   _event_enum(optin.get("user_token_status"), "user_token_status", USER_TOKEN_STATUSES, warn),
                   _event_enum(optin.get("notification_messages_reoptin"),
                               "notification_messages_reoptin", REOPTIN, warn),
                   _event_enum(optin.get("notification_messages_frequency"),
                               "notification_messages_frequency", FREQUENCIES, warn),
                   _event_time(optin.get("token_expiry_timestamp"), "token_expiry_timestamp", warn),
                   ts_ms, kind, event_key(token, page_id, psid, ts_ms, kind, data), data, lineno]
        else:
            row = [token, short_hash(token), page_id, _nn(psid), ABSENT, ABSENT, ABSENT, ABSENT,
                   ABSENT, ABSENT, ABSENT, ts_ms, kind, event_key(token, page_id, psid, ts_ms, kind, data),
                   data, lineno]
    except BadValue as exc:
        warn.clear()
        sink.reject(lineno, str(exc), _json_excerpt(ev))
        return
    sink.events.append(row)
    if warn:
        _warn_all(sink, lineno, warn, lambda: _json_excerpt(ev))

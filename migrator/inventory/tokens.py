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
import hashlib
import io
import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable

import orjson

from migrator.countries import iso_countries, normalize_country
from migrator.privacy import HASH_LEN, short_hash
from migrator.timeparse import MAX_MS, MS_THRESHOLD, TimeParseError, to_epoch_ms, to_epoch_seconds

if TYPE_CHECKING:
    from migrator.inventory.stage import StageSink

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
_fromisoformat = datetime.fromisoformat
_SPACE = re.compile(r"\s")

# Absent values are staged as '' (never a real value: text is stripped, the rest are ints),
# not None: sqlite3 binds None through an adapter lookup that costs ~0.4 us a value, a third
# of the staging time; the merge reads them back with nullif().
ABSENT = ""


def _nn(value: Any) -> Any:
    return ABSENT if value is None else value


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


def _token(value: Any) -> str:
    v = _s(value)
    if not v:
        raise BadValue("missing token")
    if len(v) > MAX_TOKEN_LEN or _SPACE.search(v):
        raise BadValue("token is not a plausible notification_messages_token")
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
    if len(v) > 64 or _SPACE.search(v):
        raise BadValue(f"{name} {v[:40]!r} is not an id")
    return v


def _time(value: Any, name: str) -> int | None:
    try:
        return to_epoch_seconds(value)
    except TimeParseError as exc:
        raise BadValue(f"{name}: {exc}") from None


def _time_text(v: str, name: str) -> int | None:
    """_time for CSV text, with fast paths for epoch milliseconds and `...T03:04:05Z`."""
    if len(v) <= 15 and v.isdecimal():  # the timeparse rule: above 1e11 is milliseconds
        n = int(v)
        if n <= MS_THRESHOLD:
            return n
        if n <= MAX_MS:
            return n // 1000
    elif len(v) == 20 and v[19] == "Z" and v[10] == "T":
        try:
            return int(_fromisoformat(v).timestamp())  # Python 3.11 reads the Z as UTC
        except ValueError:
            pass
    return _time(v, name)


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

# column -> (stage slot, fast-path expression of the non-empty text `v`)
_CSV_FAST = {
    "psid": ("psid", "v if len(v) <= 64 and v.isdecimal() else _nn(_id(v, 'psid'))"),
    "topic_title": ("topic_title", "v.strip()"),
    "timezone": ("timezone", "v.strip()"),
    "country": ("country", "v if v in _ISO else _nn(_country(v))"),
    "token_status": ("status", "v if v == 'active' or v == 'stopped' else _nn(_status(v))"),
    "user_token_status": ("user_token_status",
                          "v if v in _USER_TOKEN_STATUSES else "
                          "_nn(_enum(v, 'user_token_status', _USER_TOKEN_STATUSES))"),
    "frequency": ("frequency", "v if v in _FREQUENCIES else _nn(_enum(v, 'frequency', _FREQUENCIES))"),
    # up to 10 decimal digits is epoch seconds (to 2286); anything else takes the full parse
    "token_expiry": ("token_expiry", "int(v) if len(v) <= 10 and v.isdecimal() else _nn(_time_text(v, 'token_expiry'))"),
    "created_at": ("created_at", "int(v) if len(v) <= 10 and v.isdecimal() else _nn(_time_text(v, 'created_at'))"),
    "next_eligible_at": ("next_eligible_at",
                         "int(v) if len(v) <= 10 and v.isdecimal() else _nn(_time_text(v, 'next_eligible_at'))"),
    "last_sent_at": ("last_sent_at",
                     "int(v) if len(v) <= 10 and v.isdecimal() else _nn(_time_text(v, 'last_sent_at'))"),
}


def _compile_csv_row(header: list[str]) -> tuple[Callable[[list[str], int], list], tuple[str, ...]]:
    """`row_to_stage(row, line)` for this header, and the stage columns its rows fill.

    Only the columns the file has are staged (the others stay NULL): fewer values to bind.
    A row that fails a check raises BadValue.
    """
    col = {}
    for i, name in enumerate(header):
        col.setdefault(name, i)
    body = [
        "def row_to_stage(row, line):",
        f"    token = row[{col['token']}]",
        f"    if not (len(token) <= {MAX_TOKEN_LEN} and token.isalnum()):",
        "        token = _token(token)",
        f"    page = row[{col['page_id']}]",
        "    if not (len(page) <= 64 and page.isdecimal()):",
        "        page = _id(page, 'page_id', required=True)",
    ]
    # token_hash is privacy.short_hash, inlined
    values = {"line": "line", "token": "token", "page_id": "page",
              "token_hash": f"_sha256(token.encode('utf-8', 'surrogatepass')).hexdigest()[:{HASH_LEN}]"}
    for name, (slot, expr) in _CSV_FAST.items():
        if name in col:
            body += [f"    v = row[{col[name]}]", f"    {slot} = ({expr}) if v else ''"]
            values[slot] = slot
    columns = tuple(c for c in SNAPSHOT_COLUMNS if c in values)
    body.append(f"    return [{', '.join(values[c] for c in columns)}]")
    namespace = {"_nn": _nn, "_token": _token, "_id": _id, "_time_text": _time_text, "_enum": _enum, "_country": _country,
                 "_status": _status, "_ISO": iso_countries(), "_sha256": hashlib.sha256,
                 "_USER_TOKEN_STATUSES": USER_TOKEN_STATUSES,
                 "_FREQUENCIES": FREQUENCIES}
    exec("\n".join(body), namespace)  # noqa: S102 - code built above from constants only
    return namespace["row_to_stage"], columns


class CsvLayout:
    """Where each known column sits in a CSV with this header (unknown columns are ignored)."""

    def __init__(self, header: list[str]):
        self.header = header
        self.width = len(header)
        self.missing = [c for c in REQUIRED_CSV if c not in header]
        self.row_to_stage, self.columns = (None, ()) if self.missing else _compile_csv_row(header)

    def __reduce__(self):  # pickled by its header: the converter is rebuilt, not sent
        return (CsvLayout, (self.header,))

    @staticmethod
    def from_line(text: str) -> "CsvLayout":
        row = next(csv.reader([text]), [])
        return CsvLayout([c.strip().lstrip("\ufeff").lower() for c in row])


def stage_csv(text: str, layout: CsvLayout, first_line: int, sink: "StageSink") -> None:
    """Stage the CSV records of `text` (whole records; its first line is `first_line`)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    base = first_line - 1
    width, row_to_stage = layout.width, layout.row_to_stage
    snapshots = sink.snapshots
    sink.snapshot_columns = layout.columns
    while True:
        try:
            for row in reader:
                if len(row) == width:
                    try:
                        snapshots.append(row_to_stage(row, base + reader.line_num))
                        continue
                    except BadValue as exc:
                        if any(c.strip() for c in row):
                            sink.reject(base + reader.line_num, str(exc), _excerpt(",".join(row)))
                elif any(c.strip() for c in row):
                    sink.reject(base + reader.line_num, f"expected {width} columns, found {len(row)}",
                                _excerpt(",".join(row)))
            return
        except csv.Error as exc:  # the reader goes on with the next line
            sink.reject(base + reader.line_num, f"malformed CSV ({exc}): an unclosed quote?")


# --- token listing JSON ----------------------------------------------------------------

def listing_row(item: Any, page_id: str | None, line: int) -> list:
    """Map one `notification_message_tokens` item (rn-api.md §4) to a snapshot stage row."""
    if not isinstance(item, dict):
        raise BadValue(f"expected a token object, got {type(item).__name__}")
    pid = _id(item.get("page_id"), "page_id") or page_id
    if pid is None:
        raise BadValue("no page_id (the listing dump lacks it: add a page_id field or pass --page-id)")
    token = _token(item.get("notification_messages_token"))
    return [
        line, token, short_hash(token), pid,
        _nn(_id(item.get("recipient_id"), "recipient_id")),
        _nn(_s(item.get("topic_title"))),
        ABSENT,  # payload: not in the listing
        _nn(_s(item.get("notification_messages_timezone"))),
        ABSENT,  # country
        ABSENT,  # status: the listing has only active tokens, and says nothing of stops
        _nn(_enum(item.get("user_token_status"), "user_token_status", USER_TOKEN_STATUSES)),
        _nn(_enum(item.get("notification_messages_reoptin"), "notification_messages_reoptin", REOPTIN)),
        _nn(_enum(item.get("notification_messages_frequency"), "notification_messages_frequency",
                  FREQUENCIES)),
        _nn(_time(item.get("token_expiry_timestamp"), "token_expiry_timestamp")),
        _nn(_time(item.get("creation_timestamp"), "creation_timestamp")),
        _nn(_time(item.get("next_eligible_time"), "next_eligible_time")),
        ABSENT,  # last_sent_at
    ]


def stage_listing_items(items: Iterable[Any], page_id: str | None, line: int,
                        sink: "StageSink") -> None:
    for item in items:
        try:
            sink.snapshots.append(listing_row(item, page_id, line))
        except BadValue as exc:
            sink.reject(line, str(exc), _excerpt(json.dumps(item, default=str)[:200]))


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
        return _id(value, "page_id")
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
    for lineno, obj, error in values:
        if error is not None:
            sink.reject(lineno, error)
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("entry"), list):
            sink.reject(lineno, 'not a webhook delivery (expected {"object": "page", "entry": [...]})',
                        _excerpt(json.dumps(obj, default=str)[:200]))
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
                _stage_event(lineno, entry, ev, sink)


def event_key(token: str, page_id: str | None, psid: str | None, ts_ms: int, kind: str,
              data: str) -> str:
    """Identity of a webhook event: a redelivery of the same event has the same key."""
    ident = f"{token}\x1f{page_id}\x1f{psid}\x1f{ts_ms}\x1f{kind}\x1f{data}"
    return hashlib.blake2b(ident.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _text(v: Any) -> Any:
    """_s for a JSON value, staged: a plain string is only stripped ('' when blank)."""
    if type(v) is str:
        return v.strip()
    return ABSENT if v is None else _nn(_s(v))


def _event_enum(v: Any, name: str, allowed: frozenset[str]) -> Any:
    if type(v) is str and v in allowed:
        return v
    return ABSENT if v is None else _nn(_enum(v, name, allowed))


def _event_time(v: Any, name: str) -> Any:
    if type(v) is int and 0 <= v <= MAX_MS:  # epoch seconds or milliseconds (timeparse rule)
        return v if v <= MS_THRESHOLD else v // 1000
    return ABSENT if v is None else _nn(_time(v, name))


def _is_id(v: Any) -> bool:
    return type(v) is str and len(v) <= 64 and v.isdecimal()


def _stage_event(lineno: int, entry: dict, ev: Any, sink: "StageSink") -> None:
    """One messaging event; clean values take the fast checks, the rest the thorough ones."""
    if not isinstance(ev, dict):
        sink.reject(lineno, "messaging event is not an object")
        return
    optin = ev.get("optin")
    if not isinstance(optin, dict) or optin.get("type") != "notification_messages":
        sink.ignored += 1
        return
    try:
        sender = ev.get("sender")
        recipient = ev.get("recipient")
        sender = sender if isinstance(sender, dict) else {}
        recipient = recipient if isinstance(recipient, dict) else {}
        page_id = recipient.get("id")
        if not _is_id(page_id):
            page_id = _id(page_id, "recipient.id") or _id(entry.get("id"), "entry.id")
            if page_id is None:
                raise BadValue("no page id (recipient.id or entry.id)")
        ts_raw = ev.get("timestamp", entry.get("time"))
        if type(ts_raw) is int and MS_THRESHOLD < ts_raw <= MAX_MS:
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
        if not (type(token) is str and len(token) <= MAX_TOKEN_LEN and token.isalnum()):
            token = _token(token)
        psid = sender.get("id")
        if not _is_id(psid):
            psid = _id(psid, "sender.id")
        try:
            data = orjson.dumps(optin, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits
            raise BadValue(f"the optin object cannot be stored: {exc}") from None
        if kind == "optin":
            row = [token, short_hash(token), page_id, _nn(psid), _text(optin.get("title")),
                   _text(optin.get("payload")), _text(optin.get("notification_messages_timezone")),
                   _event_enum(optin.get("user_token_status"), "user_token_status", USER_TOKEN_STATUSES),
                   _event_enum(optin.get("notification_messages_reoptin"),
                               "notification_messages_reoptin", REOPTIN),
                   _event_enum(optin.get("notification_messages_frequency"),
                               "notification_messages_frequency", FREQUENCIES),
                   _event_time(optin.get("token_expiry_timestamp"), "token_expiry_timestamp"),
                   ts_ms, kind, event_key(token, page_id, psid, ts_ms, kind, data), data, lineno]
        else:
            row = [token, short_hash(token), page_id, _nn(psid), ABSENT, ABSENT, ABSENT, ABSENT,
                   ABSENT, ABSENT, ABSENT, ts_ms, kind, event_key(token, page_id, psid, ts_ms, kind, data),
                   data, lineno]
    except BadValue as exc:
        sink.reject(lineno, str(exc), _excerpt(json.dumps(ev, default=str)[:200]))
        return
    sink.events.append(row)

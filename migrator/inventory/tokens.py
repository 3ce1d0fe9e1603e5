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
from typing import TYPE_CHECKING, Any, Callable, Iterable

import orjson

from migrator.countries import iso_countries, normalize_country
from migrator.privacy import short_hash
from migrator.timeparse import TimeParseError, to_epoch_ms, to_epoch_seconds

if TYPE_CHECKING:
    from migrator.inventory.stage import StageSink

CSV_COLUMNS = (
    "page_id", "token", "psid", "topic_title", "timezone", "country", "token_status",
    "user_token_status", "token_expiry", "created_at", "next_eligible_at", "last_sent_at",
    "frequency",
)
REQUIRED_CSV = ("page_id", "token")
USER_TOKEN_STATUSES = {"REFRESHED", "NOT_REFRESHED"}
FREQUENCIES = {"DAILY", "WEEKLY", "MONTHLY"}
REOPTIN = {"ENABLED", "DISABLED"}
STATUS_EVENTS = {"STOP_NOTIFICATIONS": "stop", "RESUME_NOTIFICATIONS": "resume"}
MAX_TOKEN_LEN = 1024
_SPACE = re.compile(r"\s")

# A snapshot stage row: (line, token, token_hash, page_id) + PROFILE[4:] + ... in this order;
# an event row adds (ts_ms, kind, event_key, data).
SNAPSHOT_COLUMNS = (
    "line", "token", "token_hash", "page_id", "psid", "topic_title", "payload", "timezone",
    "country", "status", "user_token_status", "reoptin", "frequency", "token_expiry",
    "created_at", "next_eligible_at", "last_sent_at",
)
EVENT_COLUMNS = SNAPSHOT_COLUMNS + ("ts_ms", "kind", "event_key", "data")
_SLOT = {name: i for i, name in enumerate(EVENT_COLUMNS)}
_EMPTY_SNAPSHOT = [None] * len(SNAPSHOT_COLUMNS)


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


def _enum(value: Any, name: str, allowed: set[str]) -> str | None:
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


# --- fast converters: exact clean values first, the thorough helper otherwise -----------

def _fast_time(name: str) -> Callable[[str], int | None]:
    def conv(v: str) -> int | None:
        # up to 10 decimal digits is epoch seconds (to 2286); anything else takes the full parse
        if len(v) <= 10 and v.isdecimal():
            return int(v)
        return _time(v, name)
    return conv


def _fast_id(name: str) -> Callable[[str], str | None]:
    def conv(v: str) -> str | None:
        if len(v) <= 64 and v.isdecimal():
            return v
        return _id(v, name)
    return conv


def _fast_enum(name: str, allowed: set[str]) -> Callable[[str], str | None]:
    exact = {a: a for a in allowed}

    def conv(v: str) -> str | None:
        return exact.get(v) or _enum(v, name, allowed)
    return conv


def _fast_country(v: str) -> str | None:
    return v if v in iso_countries() else _country(v)


def _fast_status(v: str) -> str | None:
    return v if v in ("active", "stopped") else _status(v)


def _text(v: str) -> str | None:
    return v.strip() or None


# optional CSV column -> (stage slot, converter of its non-empty text)
_CSV_CONVERTERS: dict[str, tuple[int, Callable[[str], Any]]] = {
    "psid": (_SLOT["psid"], _fast_id("psid")),
    "topic_title": (_SLOT["topic_title"], _text),
    "timezone": (_SLOT["timezone"], _text),
    "country": (_SLOT["country"], _fast_country),
    "token_status": (_SLOT["status"], _fast_status),
    "user_token_status": (_SLOT["user_token_status"], _fast_enum("user_token_status", USER_TOKEN_STATUSES)),
    "frequency": (_SLOT["frequency"], _fast_enum("frequency", FREQUENCIES)),
    "token_expiry": (_SLOT["token_expiry"], _fast_time("token_expiry")),
    "created_at": (_SLOT["created_at"], _fast_time("created_at")),
    "next_eligible_at": (_SLOT["next_eligible_at"], _fast_time("next_eligible_at")),
    "last_sent_at": (_SLOT["last_sent_at"], _fast_time("last_sent_at")),
}


# --- CSV -----------------------------------------------------------------------------------

class CsvLayout:
    """Where each known column sits in a CSV with this header (unknown columns are ignored)."""

    def __init__(self, header: list[str]):
        self.header = header
        self.width = len(header)
        self.missing = [c for c in REQUIRED_CSV if c not in header]
        if not self.missing:
            self.i_token, self.i_page = header.index("token"), header.index("page_id")
        self.optional = [(slot, header.index(name), conv)
                         for name, (slot, conv) in _CSV_CONVERTERS.items() if name in header]

    def __reduce__(self):  # pickled by its header: the converters are rebuilt, not sent
        return (CsvLayout, (self.header,))

    @staticmethod
    def from_line(text: str) -> "CsvLayout":
        row = next(csv.reader([text]), [])
        return CsvLayout([c.strip().lstrip("\ufeff").lower() for c in row])


def stage_csv(text: str, layout: CsvLayout, first_line: int, sink: "StageSink") -> None:
    """Stage the CSV records of `text` (whole records; its first line is `first_line`)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    base = first_line - 1
    width, i_tok, i_page, optional = layout.width, layout.i_token, layout.i_page, layout.optional
    snapshots = sink.snapshots
    for row in reader:
        if len(row) != width:
            if any(c.strip() for c in row):
                sink.reject(base + reader.line_num, f"expected {width} columns, found {len(row)}",
                            _excerpt(",".join(row)))
            continue
        token, page = row[i_tok], row[i_page]
        try:
            if not (len(token) <= MAX_TOKEN_LEN and token.isalnum()):
                token = token.strip()
                if not token:
                    if not any(c.strip() for c in row):
                        continue  # a blank line
                    raise BadValue("missing token")
                token = _token(token)
            if not (len(page) <= 64 and page.isdecimal()):
                page = _id(page, "page_id", required=True)
            rec = _EMPTY_SNAPSHOT.copy()
            for slot, i, conv in optional:
                v = row[i]
                if v:
                    rec[slot] = conv(v)
        except BadValue as exc:
            sink.reject(base + reader.line_num, str(exc), _excerpt(",".join(row)))
            continue
        rec[0] = base + reader.line_num
        rec[1] = token
        rec[2] = short_hash(token)
        rec[3] = page
        snapshots.append(rec)


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
        _id(item.get("recipient_id"), "recipient_id"),
        _s(item.get("topic_title")),
        None,  # payload: not in the listing
        _s(item.get("notification_messages_timezone")),
        None,  # country
        None,  # status: the listing has only active tokens, and says nothing of stops
        _enum(item.get("user_token_status"), "user_token_status", USER_TOKEN_STATUSES),
        _enum(item.get("notification_messages_reoptin"), "notification_messages_reoptin", REOPTIN),
        _enum(item.get("notification_messages_frequency"), "notification_messages_frequency",
              FREQUENCIES),
        _time(item.get("token_expiry_timestamp"), "token_expiry_timestamp"),
        _time(item.get("creation_timestamp"), "creation_timestamp"),
        _time(item.get("next_eligible_time"), "next_eligible_time"),
        None,  # last_sent_at
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


def _stage_event(lineno: int, entry: dict, ev: Any, sink: "StageSink") -> None:
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
        page_id = _id(recipient.get("id"), "recipient.id") or _id(entry.get("id"), "entry.id")
        if page_id is None:
            raise BadValue("no page id (recipient.id or entry.id)")
        ts_raw = ev.get("timestamp", entry.get("time"))
        if ts_raw is None:
            raise BadValue("no timestamp")
        try:
            ts_ms = to_epoch_ms(ts_raw)
        except TimeParseError as exc:
            raise BadValue(f"timestamp: {exc}") from None
        status_raw = optin.get("notification_messages_status")
        if status_raw is None:
            kind = "optin"
        else:
            status_raw = _s(status_raw)
            kind = "optin" if status_raw is None else STATUS_EVENTS.get(status_raw.upper().replace(" ", "_"))
            if kind is None:
                raise BadValue(f"notification_messages_status {status_raw!r} is not "
                               "STOP_NOTIFICATIONS or RESUME_NOTIFICATIONS")
        token = _token(optin.get("notification_messages_token"))
        psid = _id(sender.get("id"), "sender.id")
        data = orjson.dumps(optin, option=orjson.OPT_SORT_KEYS).decode()
        row = [lineno, token, short_hash(token), page_id, psid, None, None, None, None,
               "stopped" if kind == "stop" else "active", None, None, None, None, None, None, None,
               ts_ms, kind, event_key(token, page_id, psid, ts_ms, kind, data), data]
        if kind == "optin":
            row[5] = _s(optin.get("title"))
            row[6] = _s(optin.get("payload"))
            row[7] = _s(optin.get("notification_messages_timezone"))
            row[10] = _enum(optin.get("user_token_status"), "user_token_status", USER_TOKEN_STATUSES)
            row[11] = _enum(optin.get("notification_messages_reoptin"),
                            "notification_messages_reoptin", REOPTIN)
            row[12] = _enum(optin.get("notification_messages_frequency"),
                            "notification_messages_frequency", FREQUENCIES)
            row[13] = _time(optin.get("token_expiry_timestamp"), "token_expiry_timestamp")
    except BadValue as exc:
        sink.reject(lineno, str(exc), _excerpt(json.dumps(ev, default=str)[:200]))
        return
    sink.events.append(row)

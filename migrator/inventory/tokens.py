"""Parse token records from the three sources a partner may have.

Each parser yields `Parsed` items, one per input record, so that every record is counted
exactly once: an observation about a token, an ignored record (an event that is not about
RN tokens), or a rejected record (with the reason a person can act on).

- CSV exports (`page_id, token` + optional columns) and token-listing JSON are *snapshots*.
- Page webhook deliveries (`messaging_optins`, `optin.type = "notification_messages"`) are
  *events*, with a timestamp, that the workspace replays in timestamp order.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re

import orjson
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from migrator.countries import normalize_country
from migrator.inventory.sources import Line
from migrator.timeparse import TimeParseError, to_epoch_ms, to_epoch_seconds

CSV_COLUMNS = (
    "page_id", "token", "psid", "topic_title", "timezone", "country", "token_status",
    "user_token_status", "token_expiry", "created_at", "next_eligible_at", "last_sent_at",
    "frequency",
)
REQUIRED_CSV = ("page_id", "token")
TOKEN_STATUSES = {"active": "active", "stopped": "stopped"}
USER_TOKEN_STATUSES = {"REFRESHED", "NOT_REFRESHED"}
FREQUENCIES = {"DAILY", "WEEKLY", "MONTHLY"}
STATUS_EVENTS = {"STOP_NOTIFICATIONS": "stop", "RESUME_NOTIFICATIONS": "resume"}
MAX_TOKEN_LEN = 1024
_SPACE = re.compile(r"\s")


@dataclass(slots=True)
class TokenObs:
    """One observation about a token: a snapshot row or an opt-in/stop/resume event."""

    token: str
    page_id: str | None = None
    psid: str | None = None
    topic_title: str | None = None
    payload: str | None = None
    timezone: str | None = None
    country: str | None = None
    status: str | None = None  # active | stopped | None (not observed)
    user_token_status: str | None = None
    reoptin: str | None = None
    frequency: str | None = None
    token_expiry: int | None = None
    created_at: int | None = None
    next_eligible_at: int | None = None
    last_sent_at: int | None = None
    # events only
    ts_ms: int | None = None
    kind: str | None = None  # optin | stop | resume
    data: str | None = None

    def profile(self) -> tuple:
        return (self.page_id, self.psid, self.topic_title, self.payload, self.timezone,
                self.country, self.user_token_status, self.reoptin, self.frequency,
                self.token_expiry, self.created_at, self.next_eligible_at, self.last_sent_at)

    def event_key(self) -> str:
        """Identity of a webhook event: a redelivery of the same event has the same key."""
        ident = f"{self.token}\x1f{self.page_id}\x1f{self.psid}\x1f{self.ts_ms}\x1f{self.kind}\x1f{self.data}"
        return hashlib.blake2b(ident.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(slots=True)
class Parsed:
    line: int
    kind: str  # obs | ignored | reject
    obs: TokenObs | None = None
    reason: str | None = None
    excerpt: str | None = None


class BadValue(ValueError):
    pass


# --- field helpers -----------------------------------------------------------------------

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


def _excerpt(text: str) -> str:
    return text.strip()[:200]


# --- CSV -----------------------------------------------------------------------------------

def _status(v: str) -> str:
    st = v.lower()
    if st not in TOKEN_STATUSES:
        raise BadValue(f"token_status {v!r} is not active or stopped")
    return st


def _timer(name: str):
    return lambda v: _time(v, name)


# optional CSV column -> converter of its (stripped, non-empty) text
_CSV_CONVERTERS = {
    "psid": lambda v: _id(v, "psid"),
    "topic_title": str,
    "timezone": str,
    "country": _country,
    "token_status": _status,
    "user_token_status": lambda v: _enum(v, "user_token_status", USER_TOKEN_STATUSES),
    "frequency": lambda v: _enum(v, "frequency", FREQUENCIES),
    "token_expiry": _timer("token_expiry"),
    "created_at": _timer("created_at"),
    "next_eligible_at": _timer("next_eligible_at"),
    "last_sent_at": _timer("last_sent_at"),
}
_CSV_FIELD = {"token_status": "status"}


def parse_csv(lines: Iterable[str], *, path: str = "") -> Iterator[Parsed]:
    """Parse a tokens CSV (header row required). Unknown extra columns are ignored.

    This is the hot path of a 10M-token ingest: empty cells are skipped before any
    conversion, and each present column has one converter.
    """
    reader = csv.reader(lines)
    header: list[str] | None = None
    for row in reader:
        if header is None:
            if not row or not any(c.strip() for c in row):
                continue
            header = [c.strip().lstrip("\ufeff").lower() for c in row]
            missing = [c for c in REQUIRED_CSV if c not in header]
            if missing:
                from migrator.errors import InputError

                raise InputError(
                    f"CSV header lacks required column(s) {', '.join(missing)} "
                    f"(found: {', '.join(header)[:200]})",
                    path=path, line=reader.line_num,
                    hint="the first row must name the columns; page_id and token are required",
                )
            width = len(header)
            i_token, i_page = header.index("token"), header.index("page_id")
            optional = [(_CSV_FIELD.get(name, name), header.index(name), conv)
                        for name, conv in _CSV_CONVERTERS.items() if name in header]
            continue
        if len(row) != width:
            if not any(c.strip() for c in row):
                continue
            yield Parsed(reader.line_num, "reject", reason=f"expected {width} columns, found {len(row)}",
                         excerpt=_excerpt(",".join(row)))
            continue
        try:
            token = row[i_token].strip()
            if not token:
                if not any(c.strip() for c in row):
                    continue
                raise BadValue("missing token")
            if len(token) > MAX_TOKEN_LEN or _SPACE.search(token):
                raise BadValue("token is not a plausible notification_messages_token")
            page = row[i_page].strip()
            if not page:
                raise BadValue("missing page_id")
            if len(page) > 64 or _SPACE.search(page):
                raise BadValue(f"page_id {page[:40]!r} is not an id")
            fields = {}
            for name, i, conv in optional:
                v = row[i]
                if v:
                    v = v.strip()
                    if v:
                        fields[name] = conv(v)
            obs = TokenObs(token, page, **fields)
        except BadValue as exc:
            yield Parsed(reader.line_num, "reject", reason=str(exc), excerpt=_excerpt(",".join(row)))
            continue
        yield Parsed(reader.line_num, "obs", obs=obs)


# --- token listing JSON ----------------------------------------------------------------

def listing_item_to_obs(item: Any, page_id: str | None) -> TokenObs:
    """Map one `notification_message_tokens` item (rn-api.md §4) to an observation."""
    if not isinstance(item, dict):
        raise BadValue(f"expected a token object, got {type(item).__name__}")
    pid = _id(item.get("page_id"), "page_id") or page_id
    if pid is None:
        raise BadValue("no page_id (the listing dump lacks it: add a page_id field or pass --page-id)")
    return TokenObs(
        token=_token(item.get("notification_messages_token")),
        page_id=pid,
        psid=_id(item.get("recipient_id"), "recipient_id"),
        topic_title=_s(item.get("topic_title")),
        timezone=_s(item.get("notification_messages_timezone")),
        user_token_status=_enum(item.get("user_token_status"), "user_token_status",
                                USER_TOKEN_STATUSES),
        reoptin=_enum(item.get("notification_messages_reoptin"), "notification_messages_reoptin",
                      {"ENABLED", "DISABLED"}),
        frequency=_enum(item.get("notification_messages_frequency"),
                        "notification_messages_frequency", FREQUENCIES),
        token_expiry=_time(item.get("token_expiry_timestamp"), "token_expiry_timestamp"),
        created_at=_time(item.get("creation_timestamp"), "creation_timestamp"),
        next_eligible_at=_time(item.get("next_eligible_time"), "next_eligible_time"),
    )


def parse_listing(lines: Iterable[Line], *, page_id: str | None = None) -> Iterator[Parsed]:
    """Token-listing dumps: one item per line, or whole response pages {"data": [...]}."""
    for ln in lines:
        try:
            obj = orjson.loads(ln.text)
        except orjson.JSONDecodeError as exc:
            yield Parsed(ln.number, "reject", reason=f"not JSON ({exc.msg})", excerpt=_excerpt(ln.text))
            continue
        if isinstance(obj, dict) and isinstance(obj.get("data"), list):
            page = _safe_id(obj.get("page_id")) or page_id
            items = obj["data"]
        elif isinstance(obj, list):
            page, items = page_id, obj
        elif isinstance(obj, dict) and "notification_messages_token" in obj:
            page, items = page_id, [obj]
        else:
            yield Parsed(ln.number, "reject",
                         reason="not a token-listing item or page (no notification_messages_token or data)",
                         excerpt=_excerpt(ln.text))
            continue
        for item in items:
            try:
                yield Parsed(ln.number, "obs", obs=listing_item_to_obs(item, page))
            except BadValue as exc:
                yield Parsed(ln.number, "reject", reason=str(exc), excerpt=_excerpt(json.dumps(item)[:200]))


def _safe_id(value: Any) -> str | None:
    try:
        return _id(value, "page_id")
    except BadValue:
        return None


# --- webhooks --------------------------------------------------------------------------

def iter_json_values(lines: Iterable[Line], whole_text: str | None = None) -> Iterator[tuple[int, Any, str | None]]:
    """Yield (line, value, error) for JSON-lines input; a JSON array line yields its items."""
    for ln in lines:
        try:
            obj = orjson.loads(ln.text)
        except orjson.JSONDecodeError as exc:
            yield ln.number, None, f"not JSON ({exc.msg})"
            continue
        if isinstance(obj, list):
            for item in obj:
                yield ln.number, item, None
        else:
            yield ln.number, obj, None


def parse_webhooks(values: Iterable[tuple[int, Any, str | None]], raw: dict[int, str] | None = None) -> Iterator[Parsed]:
    """Page webhook deliveries; one record per messaging event (or per entry without any)."""
    for lineno, obj, error in values:
        if error is not None:
            yield Parsed(lineno, "reject", reason=error)
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("entry"), list):
            yield Parsed(lineno, "reject",
                         reason='not a webhook delivery (expected {"object": "page", "entry": [...]})',
                         excerpt=_excerpt(json.dumps(obj)[:200]))
            continue
        if obj.get("object") not in (None, "page"):
            for _ in obj["entry"]:
                yield Parsed(lineno, "ignored", reason=f"object {obj.get('object')!r}")
            continue
        for entry in obj["entry"]:
            if not isinstance(entry, dict):
                yield Parsed(lineno, "reject", reason="entry is not an object")
                continue
            events = entry.get("messaging")
            if not isinstance(events, list):
                yield Parsed(lineno, "ignored", reason="entry without messaging events")
                continue
            for ev in events:
                yield _webhook_event(lineno, entry, ev)


def _webhook_event(lineno: int, entry: dict, ev: Any) -> Parsed:
    if not isinstance(ev, dict):
        return Parsed(lineno, "reject", reason="messaging event is not an object")
    optin = ev.get("optin")
    if not isinstance(optin, dict) or optin.get("type") != "notification_messages":
        return Parsed(lineno, "ignored", reason="not a notification_messages opt-in")
    try:
        sender = ev.get("sender") if isinstance(ev.get("sender"), dict) else {}
        recipient = ev.get("recipient") if isinstance(ev.get("recipient"), dict) else {}
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
        status_raw = _s(optin.get("notification_messages_status"))
        if status_raw is None:
            kind = "optin"
        else:
            kind = STATUS_EVENTS.get(status_raw.upper().replace(" ", "_"))
            if kind is None:
                raise BadValue(f"notification_messages_status {status_raw!r} is not "
                               "STOP_NOTIFICATIONS or RESUME_NOTIFICATIONS")
        obs = TokenObs(
            token=_token(optin.get("notification_messages_token")),
            page_id=page_id,
            psid=_id(sender.get("id"), "sender.id"),
            ts_ms=ts_ms,
            kind=kind,
            status="stopped" if kind == "stop" else "active",
            data=orjson.dumps(optin, option=orjson.OPT_SORT_KEYS).decode(),
        )
        if kind == "optin":
            obs.topic_title = _s(optin.get("title"))
            obs.payload = _s(optin.get("payload"))
            obs.timezone = _s(optin.get("notification_messages_timezone"))
            obs.frequency = _enum(optin.get("notification_messages_frequency"),
                                  "notification_messages_frequency", FREQUENCIES)
            obs.user_token_status = _enum(optin.get("user_token_status"), "user_token_status",
                                          USER_TOKEN_STATUSES)
            obs.token_expiry = _time(optin.get("token_expiry_timestamp"), "token_expiry_timestamp")
            obs.reoptin = _enum(optin.get("notification_messages_reoptin"),
                                "notification_messages_reoptin", {"ENABLED", "DISABLED"})
    except BadValue as exc:
        return Parsed(lineno, "reject", reason=str(exc), excerpt=_excerpt(json.dumps(ev)[:200]))
    return Parsed(lineno, "obs", obs=obs)

"""Parse the time formats partners and Meta use: ISO 8601, epoch seconds, epoch milliseconds.

Meta never states the unit of `token_expiry_timestamp` / `creation_timestamp`; every public
sample uses 13-digit milliseconds, the listing's `next_eligible_time` is seconds. Rule: a
number whose magnitude is above 1e11 is milliseconds (1e11 s is the year 5138).
"""

from __future__ import annotations

from datetime import datetime, timezone

DAY = 86_400                    # seconds in a UTC day (the one definition)
MS_THRESHOLD = 100_000_000_000  # > 1e11 => milliseconds
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, the last time accepted
MAX_MS = MAX_SECONDS * 1000


class TimeParseError(ValueError):
    """A value is not a recognisable time."""


def to_epoch_seconds(value) -> int | None:
    """Return epoch seconds (UTC) for ISO 8601 text, epoch s or epoch ms; None for empty.

    Naive ISO times are taken as UTC. Raises TimeParseError for anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TimeParseError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return _from_number(value)
    s = str(value).strip()
    if not s:
        return None
    # isdecimal, not isdigit: "²" is a digit that int() refuses
    if s.isdecimal():
        return _from_number(int(s))
    if s.lstrip("-").replace(".", "", 1).isdecimal():
        try:
            return _from_number(float(s) if "." in s else int(s))
        except (ValueError, OverflowError):
            raise TimeParseError(f"not a time: {s!r}") from None
    iso = s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        raise TimeParseError(
            f"not a time: {s!r} (use ISO 8601 such as 2025-03-01T12:00:00Z, or epoch seconds/ms)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def to_epoch_ms(value) -> int | None:
    """Like to_epoch_seconds but keeps millisecond precision for numeric input."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise TimeParseError(f"not a time: {value!r}")
        ms = int(value) if abs(value) > MS_THRESHOLD else int(value * 1000)
        if abs(ms) > MAX_MS:
            raise TimeParseError(f"time out of range: {value!r}")
        return ms
    s = str(value).strip()
    if s.lstrip("-").isdecimal():
        return to_epoch_ms(int(s))
    secs = to_epoch_seconds(value)
    return None if secs is None else secs * 1000


def _from_number(n) -> int:
    if n != n or n in (float("inf"), float("-inf")):
        raise TimeParseError(f"not a time: {n!r}")
    if abs(n) > MS_THRESHOLD:
        n = n / 1000
    if abs(n) > MAX_SECONDS:  # after 9999-12-31
        raise TimeParseError(f"time out of range: {n!r}")
    return int(n)


def iso(ts: int | None) -> str | None:
    """Epoch seconds to ISO 8601 UTC text (for people)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Classify a Graph error (or a network failure) into what the caller should do about it.

The table is data (`error_codes.toml`, shipped in the package); this module only looks rows up.
MM codes are searched in both `code` and `error_subcode` (where Meta puts them is not documented),
and the 2300069-2300079 range is decided by the message text (two conflicting readings).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from importlib import resources
from typing import Any


class ErrorClass(str, Enum):
    """What to do with a documented error: retry later, skip the recipient for now, drop the token,
    stop the campaign, fix the request, or stop for a human (six classes)."""

    RETRY_LATER = "retry_later"
    RECIPIENT_LATER = "recipient_later"
    RECIPIENT_NEVER = "recipient_never"
    STOP_CAMPAIGN = "stop_campaign"
    FIX_PAYLOAD = "fix_payload"
    ACCOUNT_FATAL = "account_fatal"


@dataclass(frozen=True)
class Classification:
    """One decision: the class, the least wait to honour (seconds) and why."""

    error_class: ErrorClass
    wait_seconds: float | None
    meaning: str
    source: str
    matched: str                 # "2300035", "10/1893015", "200-299", "network:timeout", "fallback:other"
    reading: str | None = None   # which reading decided a text-classified code
    warmup: bool = False         # right after creation this means "still warming up"
    ambiguous: bool = False      # the request may have been processed (network failures)
    max_attempts: int | None = None  # requests in total this error allows (2300018: one retry)

    def to_json(self) -> dict:
        return {"class": self.error_class.value, "wait_seconds": self.wait_seconds,
                "meaning": self.meaning, "source": self.source, "matched": self.matched,
                "reading": self.reading, "warmup": self.warmup, "ambiguous": self.ambiguous}


MM_CODE_MIN, MM_CODE_MAX = 2300000, 2399999
SUBCODE_MIN = 1_000_000   # Meta's subcodes are 7-digit; small codes (33, 458) are only ever subcodes


@dataclass(frozen=True)
class _Table:
    version: str
    exact: dict[tuple[int, int | None], dict]
    ranges: list[dict]
    network: dict[str, dict]
    fallback: dict[str, dict]
    rows: list[dict]


@lru_cache(maxsize=1)
def load_table() -> _Table:
    """Read and check the shipped table once."""
    raw = resources.files("migrator.graph").joinpath("error_codes.toml").read_bytes()
    data = tomllib.loads(raw.decode("utf-8"))
    exact: dict[tuple[int, int | None], dict] = {}
    ranges: list[dict] = []
    for row in data["codes"]:
        _check_row(row)
        if "code_range" in row:
            ranges.append(row)
        else:
            key = (int(row["code"]), row.get("subcode"))
            if key in exact:
                raise ValueError(f"error_codes.toml: duplicate row for {key}")
            exact[key] = row
    network = {row["kind"]: row for row in data.get("network", [])}
    for row in network.values():
        _check_row(row)
    return _Table(version=data.get("version", "?"), exact=exact, ranges=ranges, network=network,
                  fallback=data["fallback"], rows=list(data["codes"]))


def _check_row(row: dict) -> None:
    classes = [row["class"]] if "class" in row else [r["class"] for r in row.get("readings", [])]
    if not classes:
        raise ValueError(f"error_codes.toml: row without class: {row}")
    for c in classes:
        ErrorClass(c)
    if "readings" in row and row.get("default") not in {r["reading"] for r in row["readings"]}:
        raise ValueError(f"error_codes.toml: default reading missing for {row.get('code')}")


def _row_class(row: dict, message: str) -> tuple[dict, str | None]:
    """For a text-classified row pick the reading whose keywords occur in the message."""
    readings = row.get("readings")
    if not readings:
        return row, None
    text = (message or "").lower()
    for r in readings:
        if any(k in text for k in r["match"]):
            return r, r["reading"]
    default = next(r for r in readings if r["reading"] == row["default"])
    return default, default["reading"]


def _find(table: _Table, code: int | None, subcode: int | None) -> tuple[dict, str] | None:
    if code is None:
        return None
    if subcode is not None and (code, subcode) in table.exact:
        return table.exact[(code, subcode)], f"{code}/{subcode}"
    if (code, None) in table.exact:
        return table.exact[(code, None)], str(code)
    for row in table.ranges:
        lo, hi = row["code_range"]
        if lo <= code <= hi:
            return row, f"{lo}-{hi}"
    return None


def classify(code: int | None, subcode: int | None = None, message: str = "", *,
             remaining_seconds: float | None = None, is_transient: bool | None = None) -> Classification:
    """Classify a Graph error envelope's fields.

    An MM code (23000xx) in `error_subcode` wins over a generic `code` (e.g. 100/2300035);
    `remaining_seconds` raises the wait when it is larger than the table's.
    """
    table = load_table()
    found = None
    if subcode is not None and MM_CODE_MIN <= subcode <= MM_CODE_MAX:
        found = _find(table, subcode, None)
    if found is None and code is not None and subcode is not None and (code, subcode) not in table.exact \
            and subcode >= SUBCODE_MIN and (subcode, None) in table.exact:
        # a documented code that Meta sends as a subcode (10/1893047): its own row beats the
        # generic parent's (classify by the documented code/subcode pair)
        found = table.exact[(subcode, None)], f"{code}/{subcode}"
    if found is None:
        found = _find(table, code, subcode)
    if found is None:
        key = "transient" if is_transient else "other"
        fb = table.fallback[key]
        return Classification(ErrorClass(fb["class"]), _wait(None, remaining_seconds), fb["meaning"],
                              "error_codes.toml fallback", f"fallback:{key}")
    row, matched = found
    decided, reading = _row_class(row, message)
    return Classification(
        error_class=ErrorClass(decided["class"]),
        wait_seconds=_wait(decided.get("wait_seconds", row.get("wait_seconds")), remaining_seconds),
        meaning=decided.get("meaning", row["meaning"]),
        source=row["source"], matched=matched, reading=reading, warmup=bool(row.get("warmup")),
        max_attempts=decided.get("max_attempts", row.get("max_attempts")))


def classify_network(kind: str) -> Classification:
    """Classify a failure with no Graph error body: connect, timeout, reset, http_5xx, ..."""
    row = load_table().network[kind]
    return Classification(ErrorClass(row["class"]), row.get("wait_seconds"), row["meaning"],
                          row["source"], f"network:{kind}", ambiguous=bool(row.get("ambiguous")))


def _wait(table_wait: float | None, remaining: float | None) -> float | None:
    if remaining is not None and remaining > 0:
        return max(float(remaining), float(table_wait or 0))
    return None if table_wait is None else float(table_wait)


def table_rows() -> list[dict[str, Any]]:
    """The table flattened for printing: one dict per code (or per reading of a code)."""
    t = load_table()
    out: list[dict[str, Any]] = []
    for row in t.rows:
        key = (f"{row['code_range'][0]}-{row['code_range'][1]}" if "code_range" in row
               else str(row["code"]) + (f"/{row['subcode']}" if row.get("subcode") is not None else ""))
        base = {"code": key, "name": row.get("name"), "warmup": bool(row.get("warmup")),
                "source": row["source"]}
        if "readings" in row:
            for r in row["readings"]:
                out.append({**base, "class": r["class"], "wait_seconds": r.get("wait_seconds"),
                            "meaning": r["meaning"],
                            "reading": r["reading"] + (" (default)" if r["reading"] == row["default"] else ""),
                            "match": r["match"]})
        else:
            out.append({**base, "class": row["class"], "wait_seconds": row.get("wait_seconds"),
                        "meaning": row["meaning"], "reading": None, "match": None})
    for kind, row in t.network.items():
        out.append({"code": f"network:{kind}", "name": None, "warmup": False, "source": row["source"],
                    "class": row["class"], "wait_seconds": row.get("wait_seconds"),
                    "meaning": row["meaning"], "reading": None, "match": None})
    return out

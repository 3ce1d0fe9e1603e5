"""Throttling signals from Graph response headers, so callers slow down before being cut off.

X-App-Usage (percent of the app's hourly platform limit), X-Ad-Account-Usage (acc_id_util_pct,
reset_time_duration in seconds) and X-Business-Use-Case-Usage (per business object, per type,
percentages and estimated_time_to_regain_access in MINUTES). Meta documents them at
https://developers.facebook.com/docs/graph-api/overview/rate-limiting and
https://developers.facebook.com/documentation/ads-commerce/marketing-api/overview/rate-limiting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Usage:
    """The highest utilisation (0-100+) across all headers and the longest regain time."""

    max_pct: float = 0.0
    regain_seconds: float = 0.0
    app: dict = field(default_factory=dict)
    ad_account: dict = field(default_factory=dict)
    business: dict = field(default_factory=dict)
    seen: bool = False          # any usage header present at all

    @property
    def throttled(self) -> bool:
        return self.max_pct >= 100 or self.regain_seconds > 0

    def to_json(self) -> dict:
        return {"max_pct": self.max_pct, "regain_seconds": self.regain_seconds, "app": self.app,
                "ad_account": self.ad_account, "business": self.business}


def _load(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


_PCT_KEYS = ("call_count", "total_cputime", "total_time")


def parse_usage(headers: Mapping[str, str]) -> Usage:
    """Parse the three usage headers (case-insensitive mapping); malformed ones are ignored.

    The headers' text changes far less often than calls are made (every answer carries them):
    the last texts seen and their parsed Usage are kept, so an unchanged answer costs three
    lookups and a comparison, not three JSON parses. Usage is frozen: sharing it is safe."""
    get = headers.get
    raw = (get("x-app-usage") or get("X-App-Usage"), get("x-ad-account-usage") or get("X-Ad-Account-Usage"),
           get("x-business-use-case-usage") or get("X-Business-Use-Case-Usage"))
    seen, usage = _last[0]
    if seen == raw:
        return usage
    usage = _parse(*raw)
    _last[0] = (raw, usage)        # one assignment: a reader sees the old pair or the new, never a mix
    return usage


_last: list = [(None, None)]      # [((app, account, business) header texts, their Usage)]


def _parse(app_text: str | None, acc_text: str | None, buc_text: str | None) -> Usage:
    pcts: list[float] = []
    regain = 0.0
    app = _load(app_text)
    if isinstance(app, dict):
        pcts += [_num(app.get(k)) for k in _PCT_KEYS]
    else:
        app = {}
    acc = _load(acc_text)
    if isinstance(acc, dict):
        pct = _num(acc.get("acc_id_util_pct"))
        pcts.append(pct)
        if pct >= 100:  # reset_time_duration is only a wait once the account is throttled
            regain = max(regain, _num(acc.get("reset_time_duration")))
    else:
        acc = {}
    buc = _load(buc_text)
    if isinstance(buc, dict):
        for entries in buc.values():
            for e in entries if isinstance(entries, list) else []:
                if isinstance(e, dict):
                    pcts += [_num(e.get(k)) for k in _PCT_KEYS]
                    regain = max(regain, _num(e.get("estimated_time_to_regain_access")) * 60)
    else:
        buc = {}
    seen = bool(app or acc or buc)
    return Usage(max_pct=max(pcts, default=0.0), regain_seconds=regain, app=app, ad_account=acc,
                 business=buc, seen=seen)

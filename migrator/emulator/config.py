"""Emulator settings and fault profiles (a small TOML or JSON file).

Fault profile example (`faults.toml`):

    [latency]                 # added to every Graph call
    distribution = "lognormal"  # fixed | uniform | lognormal
    median_ms = 20
    sigma = 0.6
    max_ms = 2000
    [errors]
    http_5xx_rate = 0.01      # half a Graph envelope (code 2, is_transient), half a bare 502
    timeout_rate = 0.002      # the answer never comes (the client times out)
    timeout_seconds = 35
    timeout_after_processing = true   # the nasty case: the send went out, the answer is lost
    reset_rate = 0.002        # connection closed mid-response (after processing)
    [throttle]
    burst_rate = 0.001        # chance that a call starts a throttling burst
    burst_seconds = 10        # during a burst every act_ call is refused (2300078 send,
                              # 2300079 campaign creation, 80004/2446079 other act_ calls)
    [codes]                   # any documented error code, answered at this rate
    2300003 = 0.01            # campaign-creation codes on message_campaign, the rest on sends
    2300028 = 0.005
    [webhooks]
    delivery_failed_rate = 0.01   # accepted sends later reported by marketing_message_delivery_failed
    click_rate = 0.1              # reads that also get a marketing_message_clicks event
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from migrator.emulator.checks import EmulatorRules
from migrator.errors import InputError

#: The regions MM does not deliver to under the packaged rules (EU under eu_definition, JP, KR, AU, UK).
EXCLUDED_REGIONS = EmulatorRules.packaged().excluded_regions


@dataclass
class FaultProfile:
    """What goes wrong, and how often; every default here is the healthy one (a missing key)."""

    latency_distribution: str = "fixed"
    latency_median_ms: float = 0.0
    latency_sigma: float = 0.5
    latency_min_ms: float = 0.0
    latency_max_ms: float = 5000.0
    http_5xx_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 35.0
    timeout_after_processing: bool = True
    reset_rate: float = 0.0
    throttle_burst_rate: float = 0.0
    throttle_burst_seconds: float = 10.0
    codes: dict[int, float] = field(default_factory=dict)   # documented code -> rate
    delivery_failed_rate: float = 0.0
    click_rate: float = 0.0

    @property
    def active(self) -> bool:
        return any((self.latency_median_ms, self.latency_min_ms, self.http_5xx_rate, self.timeout_rate,
                    self.reset_rate, self.throttle_burst_rate, self.codes))

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "<faults>") -> "FaultProfile":
        known = {"latency", "errors", "throttle", "codes", "webhooks", "seed", "name", "description"}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown fault section(s): {', '.join(sorted(unknown))}", path=source,
                             hint="sections are [latency], [errors], [throttle], [codes], [webhooks]")
        given: dict[str, Any] = {"codes": _codes(d.get("codes", {}), source)}
        defaults = {f.name: f.default for f in fields(cls)}
        try:
            for (section, key), name in PROFILE_KEYS.items():
                table = d.get(section, {})
                if key in table and not (key == "ms" and "median_ms" in table):
                    given[name] = type(defaults[name])(table[key])   # str, float or bool, as the field
            p = cls(**given)
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise InputError(f"bad fault profile value: {exc}", path=source,
                             hint="[latency], [errors] and [throttle] are tables of numbers") from None
        for name, value in vars(p).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(f"{name} must be a finite number, not {value}", path=source)
        if p.latency_distribution not in ("fixed", "uniform", "lognormal"):
            raise InputError(f"latency.distribution must be fixed, uniform or lognormal, "
                             f"not {p.latency_distribution!r}", path=source)
        for name in ("http_5xx_rate", "timeout_rate", "reset_rate", "throttle_burst_rate",
                     "delivery_failed_rate", "click_rate"):
            if not 0.0 <= getattr(p, name) <= 1.0:
                raise InputError(f"{name} must be between 0 and 1", path=source)
        return p


#: [section] key in a profile file -> the FaultProfile field it sets (in field order: the first
#: bad value is the one reported). `ms` is the older spelling of `median_ms`, read only without it.
PROFILE_KEYS: dict[tuple[str, str], str] = {
    ("latency", "distribution"): "latency_distribution",
    ("latency", "median_ms"): "latency_median_ms",
    ("latency", "ms"): "latency_median_ms",
    ("latency", "sigma"): "latency_sigma",
    ("latency", "min_ms"): "latency_min_ms",
    ("latency", "max_ms"): "latency_max_ms",
    ("errors", "http_5xx_rate"): "http_5xx_rate",
    ("errors", "timeout_rate"): "timeout_rate",
    ("errors", "timeout_seconds"): "timeout_seconds",
    ("errors", "timeout_after_processing"): "timeout_after_processing",
    ("errors", "reset_rate"): "reset_rate",
    ("throttle", "burst_rate"): "throttle_burst_rate",
    ("throttle", "burst_seconds"): "throttle_burst_seconds",
    ("webhooks", "delivery_failed_rate"): "delivery_failed_rate",
    ("webhooks", "click_rate"): "click_rate",
}


def _codes(raw: Any, source: str) -> dict[int, float]:
    """[codes]: documented error code -> rate; unknown codes are refused, not ignored."""
    from migrator.emulator.texts import MESSAGES

    if not isinstance(raw, dict):
        raise InputError("[codes] must be a table of code = rate", path=source)
    out: dict[int, float] = {}
    for k, v in raw.items():
        try:
            code, rate = int(k), float(v)
        except (TypeError, ValueError):
            raise InputError(f"[codes] {k!r} = {v!r}: expected a numeric code and a rate", path=source) from None
        if code not in MESSAGES:
            raise InputError(f"[codes] {code} is not a documented MM error code", path=source,
                             hint="see `migrator graph errors` for the documented codes")
        if not 0.0 <= rate <= 1.0:
            raise InputError(f"[codes] {code}: rate must be between 0 and 1", path=source)
        out[code] = rate
    return out


def load_fault_profile(path: str | Path, *, encoding: str | None = None) -> tuple[FaultProfile, int | None]:
    """Read a TOML (or .json) fault profile; returns the profile and its optional seed.

    Text is decoded as every input is (migrator.inputs: UTF-8/UTF-16 or `encoding`, never
    by replacement); any malformed or wrongly shaped profile is one InputError."""
    from migrator.inputs import read_text

    p = Path(path)
    text = read_text(p, encoding=encoding, what="fault profile")
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InputError(f"fault profile is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {why}",
                         path=str(p)) from None
    if not isinstance(data, dict):
        raise InputError("fault profile must be a table/object", path=str(p))
    for section in ("latency", "errors", "throttle", "webhooks"):
        if not isinstance(data.get(section, {}), dict):
            raise InputError(f"[{section}] must be a table, not {type(data[section]).__name__}", path=str(p),
                             hint="see docs for the [latency], [errors] and [throttle] keys")
    seed = data.get("seed")
    if seed is not None and (type(seed) is not int or not 0 <= seed < 2**63):
        raise InputError(f"seed must be a whole number from 0 to 2^63-1, not {seed!r}", path=str(p))
    return FaultProfile.from_dict(data, source=str(p)), seed


@dataclass
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour; all randomness derives from `seed`."""

    seed: int = 0
    warmup_seconds: float = 60.0            # 2300012 for the first half, 2300041 for the second
    cadence_seconds: float | None = None    # one MM per token per rules.mm_cadence_hours (2300035)
    cost_per_message: int = 1               # minor currency units per delivered message
    fcap_rate: float = 0.0                  # share of otherwise good sends refused 2300042-44
    read_rate: float = 0.6                  # share of deliveries that get a read event
    excluded_regions: frozenset[str] = EXCLUDED_REGIONS
    window_seconds: float = 60.0            # rolling window of the usage counters
    account_calls_per_window: int = 1_000_000   # per ad account: beyond -> 2300078 (send) / 80004
    app_calls_per_window: int = 5_000_000       # whole app: beyond -> code 4
    listing_calls_per_window: int = 100_000     # per Page token listing: beyond -> 2300080
    faults: FaultProfile = field(default_factory=FaultProfile)
    webhooks_path: str | Path | None = None
    snapshot_path: str | Path | None = None   # JSON export/import (at exit and POST /_emulator/flush)
    state_path: str | Path | None = None      # durable SQLite state (store.py); None: in memory
    app_id: str = "100000000000001"
    business_id: str = "100000000000002"
    clock: Callable[[], float] | None = None   # default wall clock; pass a VirtualClock in tests
    rules: Any = None                          # migrator.rules.Rules; default the packaged rules
    account_timezones: dict[str, str] = field(default_factory=dict)   # act id -> IANA zone
    default_account_timezone: str = "UTC"
    account_currencies: dict[str, str] = field(default_factory=dict)  # act id -> ISO 4217
    page_tokens: dict[str, str] | None = None  # page id -> its Page token (None: any token reads)

    def __post_init__(self) -> None:
        # the rules are read once, into the view the checks use; cadence and excluded regions
        # default to what that view says (given explicitly, they win)
        self._rules_view = (EmulatorRules.from_rules(self.rules) if self.rules is not None
                            else EmulatorRules.packaged())
        if self.cadence_seconds is None:
            self.cadence_seconds = self._rules_view.cadence_hours * 3600.0
        if self.rules is not None and self.excluded_regions is EXCLUDED_REGIONS:
            self.excluded_regions = self._rules_view.excluded_regions

    def rules_view(self):
        """The rules as the emulator's checks read them (EmulatorRules)."""
        return self._rules_view

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
    burst_seconds = 10        # during a burst every act_ call is refused (2300078 / 80004)
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from migrator.errors import InputError

# mm-api.md §7: recipients everywhere except the EU (27 members), Japan, South Korea, Australia, UK.
EU27 = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
        "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE")
EXCLUDED_REGIONS = frozenset(EU27 + ("JP", "KR", "AU", "GB"))


@dataclass
class FaultProfile:
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

    @property
    def active(self) -> bool:
        return any((self.latency_median_ms, self.latency_min_ms, self.http_5xx_rate, self.timeout_rate,
                    self.reset_rate, self.throttle_burst_rate))

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "<faults>") -> "FaultProfile":
        known = {"latency", "errors", "throttle", "seed", "name", "description"}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown fault section(s): {', '.join(sorted(unknown))}", path=source,
                             hint="sections are [latency], [errors], [throttle]")
        lat, err, thr = d.get("latency", {}), d.get("errors", {}), d.get("throttle", {})
        try:
            p = cls(
                latency_distribution=str(lat.get("distribution", "fixed")),
                latency_median_ms=float(lat.get("median_ms", lat.get("ms", 0.0))),
                latency_sigma=float(lat.get("sigma", 0.5)),
                latency_min_ms=float(lat.get("min_ms", 0.0)),
                latency_max_ms=float(lat.get("max_ms", 5000.0)),
                http_5xx_rate=float(err.get("http_5xx_rate", 0.0)),
                timeout_rate=float(err.get("timeout_rate", 0.0)),
                timeout_seconds=float(err.get("timeout_seconds", 35.0)),
                timeout_after_processing=bool(err.get("timeout_after_processing", True)),
                reset_rate=float(err.get("reset_rate", 0.0)),
                throttle_burst_rate=float(thr.get("burst_rate", 0.0)),
                throttle_burst_seconds=float(thr.get("burst_seconds", 10.0)),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"bad fault profile value: {exc}", path=source) from None
        if p.latency_distribution not in ("fixed", "uniform", "lognormal"):
            raise InputError(f"latency.distribution must be fixed, uniform or lognormal, "
                             f"not {p.latency_distribution!r}", path=source)
        for name in ("http_5xx_rate", "timeout_rate", "reset_rate", "throttle_burst_rate"):
            if not 0.0 <= getattr(p, name) <= 1.0:
                raise InputError(f"{name} must be between 0 and 1", path=source)
        return p


def load_fault_profile(path: str | Path) -> tuple[FaultProfile, int | None]:
    """Read a TOML (or .json) fault profile; returns the profile and its optional seed."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read fault profile: {exc.strerror}", path=str(p)) from None
    try:
        data = json.loads(raw) if p.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"fault profile is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}",
                         path=str(p)) from None
    if not isinstance(data, dict):
        raise InputError("fault profile must be a table/object", path=str(p))
    seed = data.get("seed")
    return FaultProfile.from_dict(data, source=str(p)), (int(seed) if seed is not None else None)


@dataclass
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour; all randomness derives from `seed`."""

    seed: int = 0
    warmup_seconds: float = 60.0            # 2300012 for the first half, 2300041 for the second
    cadence_seconds: float = 12 * 3600      # one MM per token per 12 h (2300035)
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
    snapshot_path: str | Path | None = None
    app_id: str = "100000000000001"
    clock: Callable[[], float] | None = None   # default wall clock; pass a VirtualClock in tests

"""The rules in force: a pydantic model over `rules.toml`, optionally overridden by a file.

Why data and not code: Meta's dates, geo lists and cadences change and its pages disagree;
each value must carry its source and last-verified date, and a partner must be able to
override a reading (e.g. EU = EEA) without a new release.

Merge semantics of an override file (`--rules FILE`): same layout as the packaged file;
it may contain any subset of entries. For each entry it names, the fields it gives
(`value`, `sources`, `verified`, `note`) replace the packaged ones and the others are
kept; a bare value (`mm_cadence_hours = 24`) is shorthand for `{value = 24}`. Lists are
replaced, never merged. An entry name the package does not know is an error (typos must
not pass silently). The entry's `origin` becomes the override file's path.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from migrator.countries import normalize_country
from migrator.errors import RulesError

T = TypeVar("T")

PACKAGE_ORIGIN = "package"
GEO_GROUPS = {"EU"}


class Entry(BaseModel, Generic[T]):
    """One rule: its value, where it was read, when it was last checked."""

    model_config = ConfigDict(extra="forbid")

    value: T
    sources: list[str] = Field(min_length=1)
    verified: date
    note: str | None = None
    used_by: list[str] = Field(default_factory=list)
    origin: str = PACKAGE_ORIGIN

    @field_validator("sources")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for s in v:
            if not s.startswith(("http://", "https://")):
                raise ValueError(f"source {s!r} is not an http(s) URL")
        return v


def _countries(v: list[str]) -> list[str]:
    out = []
    for c in v:
        try:
            code = normalize_country(c)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if code is None:
            raise ValueError("empty country code")
        out.append(code)
    return out


def _geos(v: list[str]) -> list[str]:
    """ISO codes or a group name (EU); UK normalised to GB."""
    out = []
    for g in v:
        gu = str(g).strip().upper()
        out.append(gu if gu in GEO_GROUPS else _countries([gu])[0])
    return out


class CountryList(Entry[list[str]]):
    @field_validator("value")
    @classmethod
    def _v(cls, v: list[str]) -> list[str]:
        return _countries(v)


class GeoList(Entry[list[str]]):
    @field_validator("value")
    @classmethod
    def _v(cls, v: list[str]) -> list[str]:
        return _geos(v)


class Hours(Entry[int]):
    @field_validator("value")
    @classmethod
    def _v(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be a positive number of hours")
        return v


class Percent(Entry[int]):
    @field_validator("value")
    @classmethod
    def _v(cls, v: int) -> int:
        if not 1 <= v <= 100:
            raise ValueError("must be a percentage from 1 to 100")
        return v


class Positive(Entry[int]):
    @field_validator("value")
    @classmethod
    def _v(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be a positive whole number")
        return v


class NonNegative(Entry[int]):
    @field_validator("value")
    @classmethod
    def _v(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be zero or more")
        return v


BUTTON_TYPES = ("web_url", "postback", "app")


class ButtonTypes(Entry[list[str]]):
    @field_validator("value")
    @classmethod
    def _v(cls, v: list[str]) -> list[str]:
        out = [str(t).strip().lower() for t in v]
        bad = [t for t in out if t not in BUTTON_TYPES]
        if bad or not out:
            raise ValueError(f"must be a non-empty subset of {', '.join(BUTTON_TYPES)}")
        return out


class MinBudgets(Entry[dict[str, int]]):
    @field_validator("value")
    @classmethod
    def _v(cls, v: dict[str, int]) -> dict[str, int]:
        out = {}
        for cur, n in v.items():
            c = str(cur).strip().upper()
            if len(c) != 3 or not c.isalpha():
                raise ValueError(f"{cur!r} is not a 3-letter currency code")
            if int(n) <= 0:
                raise ValueError(f"minimum for {c} must be positive")
            out[c] = int(n)
        return out


class Rules(BaseModel):
    """Every rule the toolkit enforces. Read values as `rules.<name>.value`."""

    model_config = ConfigDict(extra="forbid")

    version: str
    mm_launch: Entry[date]
    rn_integration_stop: Entry[date]
    rn_cadence_change: Entry[date]
    rn_cadence_hours_before_change: Hours
    rn_cadence_hours: Hours
    rn_deprecation_announced: Entry[date]
    rn_discontinuation: Entry[date]
    rn_exempt_geos: GeoList
    rn_token_expiry_ended: Entry[date]
    mm_business_countries: CountryList
    mm_recipient_exclusions: GeoList
    eu_members: CountryList
    eea_extra_members: CountryList
    mm_cadence_hours: Entry[Literal[12, 24]]
    mm_text_max_chars: Positive
    mm_buttons_max: Positive
    mm_buttons_per_message_max: Positive
    mm_button_types: ButtonTypes
    mm_button_title_max_chars: Positive
    mm_card_title_max_chars: Positive
    mm_card_subtitle_max_chars: Positive
    mm_cards_max: Positive
    mm_images_max: Positive
    mm_quick_replies_max: NonNegative
    mm_quick_reply_title_max_chars: Positive
    mm_payload_max_chars: Positive
    mm_line_breaks_max: NonNegative
    rn_exemption_basis: Entry[Literal["recipient", "business", "either"]]
    eu_definition: Entry[Literal["EU27", "EEA"]]
    warmup_error_codes: Entry[list[int]]
    warmup_wait_limit_hours: Hours
    mm_warmup_min_minutes: NonNegative
    mm_90_day_per_campaign_limit: Entry[bool]
    mm_required_permissions: Entry[list[str]]
    warmup_poll_max_seconds: Positive
    plan_budget_required: Entry[bool]
    mm_min_daily_budget: MinBudgets
    mm_lifetime_budget_min_days: Positive
    mm_start_max_days_ahead: Positive
    mm_daily_budget_overspend_percent: NonNegative
    mm_daily_budget_weekly_multiple: Positive
    breaker_codes: Entry[list[int]]
    breaker_early_refusals: Positive
    breaker_early_attempts: Positive
    breaker_window_percent: Percent
    breaker_window_attempts: Positive

    # -- derived views (what the audit uses) --------------------------------------------

    def entry_names(self) -> list[str]:
        return [n for n in type(self).model_fields if n != "version"]

    def eu(self) -> frozenset[str]:
        """The country codes "EU" stands for under `eu_definition`."""
        codes = set(self.eu_members.value)
        if self.eu_definition.value == "EEA":
            codes |= set(self.eea_extra_members.value)
        return frozenset(codes)

    def expand_geos(self, geos: list[str]) -> frozenset[str]:
        out: set[str] = set()
        for g in geos:
            out |= self.eu() if g == "EU" else {g}
        return frozenset(out)

    def mm_excluded_recipients(self) -> frozenset[str]:
        return self.expand_geos(self.mm_recipient_exclusions.value)

    def rn_exempt_countries(self) -> frozenset[str]:
        return self.expand_geos(self.rn_exempt_geos.value)

    def mm_business_set(self) -> frozenset[str]:
        return frozenset(self.mm_business_countries.value)

    def values(self) -> dict[str, Any]:
        """{entry: value} of the effective rules (JSON-ready)."""
        return {n: _jsonable(getattr(self, n).value) for n in self.entry_names()}

    def fingerprint(self) -> str:
        """SHA-256 of the effective values (not sources/notes: those do not change behaviour)."""
        blob = json.dumps(self.values(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def origins(self) -> list[str]:
        return sorted({getattr(self, n).origin for n in self.entry_names()})

    def to_json(self) -> dict[str, Any]:
        """What `rules show --json` prints."""
        return {
            "version": self.version,
            "fingerprint": self.fingerprint(),
            "origins": self.origins(),
            "rules": {
                n: {
                    "value": _jsonable(e.value),
                    "sources": e.sources,
                    "verified": e.verified.isoformat(),
                    "note": e.note,
                    "used_by": e.used_by,
                    "origin": e.origin,
                }
                for n in self.entry_names()
                for e in [getattr(self, n)]
            },
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def packaged_rules_text() -> str:
    return resources.files("migrator.rules").joinpath("rules.toml").read_text("utf-8")


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where}: not valid TOML: {exc}",
                         hint="fix the file; see `migrator rules show` for the expected layout") from None
    except RecursionError:
        raise RulesError(f"{where}: nested too deeply to be a rules file",
                         hint="see `migrator rules show` for the expected layout") from None


def load_rules(path: str | Path | None = None, *, encoding: str | None = None) -> Rules:
    """The rules in force: the packaged file, with `path` (an override file) applied on top."""
    raw = _parse_toml(packaged_rules_text(), "packaged rules.toml")
    if path is not None:
        raw = _apply_override(raw, Path(path), encoding)
    return _validate(raw, str(path) if path is not None else "packaged rules.toml")


def _apply_override(base: dict[str, Any], path: Path, encoding: str | None = None) -> dict[str, Any]:
    from migrator.errors import InputError
    from migrator.inputs import read_text

    try:
        text = read_text(path, encoding=encoding, what="rules file")
    except InputError as exc:
        raise RulesError(f"cannot read rules file: {exc.message}",
                         hint=exc.hint or "pass an existing TOML file to --rules") from None
    over = _parse_toml(text, str(path))
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    known = [k for k in base if k != "version"]
    for name, val in over.items():
        if name == "version":
            merged["version"] = val
            continue
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            raise RulesError(
                f"{path}: unknown rules entry {name!r}",
                hint=("did you mean " + ", ".join(close[:3]) + "? " if close else "")
                + "`migrator rules show` lists every entry")
        entry = dict(merged[name])
        fields = {"value", "sources", "verified", "note", "used_by"}
        if isinstance(val, dict) and isinstance(entry.get("value"), dict) and not set(val) & fields:
            val = {"value": val}   # a bare table for a table-valued rule: `mm_min_daily_budget = {USD = 50}`
        if isinstance(val, dict):
            unknown = set(val) - {"value", "sources", "verified", "note", "used_by"}
            if unknown:
                raise RulesError(
                    f"{path}: rules entry {name!r} has unknown field(s) {', '.join(sorted(unknown))}",
                    hint="an entry may set value, sources, verified, note and used_by")
            entry.update(val)
        else:
            entry["value"] = val
        entry["origin"] = str(path)
        merged[name] = entry
    if "version" not in over:
        merged["version"] = f"{base.get('version')}+local"
    return merged


def _validate(raw: dict[str, Any], where: str) -> Rules:
    try:
        return Rules.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        name = str(err["loc"][0]) if err["loc"] else "?"
        got = err.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        more = f" and {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
        raise RulesError(
            f"{where}: rules entry {loc or name}: {err['msg']}{got_s}{more}",
            hint=f"fix entry [{name}]; `migrator rules show` prints the expected values",
        ) from None

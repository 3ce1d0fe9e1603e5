"""The plan spec: a TOML file a person writes and reviews, validated by a pydantic model.

Errors name the file, the key and what is expected, never a traceback. The JSON Schema of
`PlanSpec` is what `migrator plan --schema` prints; docs/plan.md explains every key.
Money is always an integer in the ad account currency's minor unit (cents for USD).
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from migrator.countries import normalize_country
from migrator.errors import PlanError

NAME_FIELDS = ("page_id", "page_name", "topic", "ad_account", "as_of", "key")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _utc(v: Any) -> Any:
    """TOML dates and naive datetimes are taken as UTC."""
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, date):
        return datetime.combine(v, time(0), tzinfo=timezone.utc)
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v.strip()):
        return datetime.combine(date.fromisoformat(v.strip()), time(0), tzinfo=timezone.utc)
    return v


def _account_id(v: Any) -> str:
    s = str(v).strip()
    if s.startswith("act_"):
        s = s[4:]
    if not s.isdigit():
        raise ValueError("expected the ad account id: digits, optionally prefixed act_")
    return s


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdAccount(_Strict):
    """An ad account campaigns are billed to."""

    id: str = Field(description="Ad account id, digits (act_ prefix accepted).")
    currency: str = Field(description="ISO 4217 code of the account currency, e.g. USD.")
    business_country: str = Field(description="ISO 3166 alpha-2 country of the business; must be "
                                              "one of the MM business countries in the rules.")
    cost_per_message: int | None = Field(
        default=None, ge=0,
        description="Expected cost of one delivered message, minor currency units (e.g. 2 = 2 cents).")

    _id = field_validator("id", mode="before")(classmethod(lambda cls, v: _account_id(v)))

    @field_validator("currency")
    @classmethod
    def _cur(cls, v: str) -> str:
        v = v.strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", v):
            raise ValueError("expected a 3-letter ISO 4217 currency code, e.g. USD")
        return v

    @field_validator("business_country")
    @classmethod
    def _country(cls, v: str) -> str:
        c = normalize_country(v)
        if c is None:
            raise ValueError("expected an ISO 3166 alpha-2 country code, e.g. US")
        return c


class PageSpec(_Strict):
    """Per-page settings: which ad account pays, budget overrides, or leave the page out."""

    ad_account: str | None = Field(default=None, description="Ad account id for this page "
                                   "(default: ad_account_id from `migrator ingest pages`).")
    exclude: bool = Field(default=False, description="Plan nothing for this page.")
    daily_budget: int | None = Field(default=None, gt=0, description="Overrides campaign.daily_budget.")
    lifetime_budget: int | None = Field(default=None, gt=0,
                                        description="Overrides campaign.lifetime_budget.")

    @field_validator("ad_account", mode="before")
    @classmethod
    def _acct(cls, v: Any) -> Any:
        return None if v is None else _account_id(v)

    @model_validator(mode="after")
    def _one_budget(self) -> "PageSpec":
        if self.daily_budget is not None and self.lifetime_budget is not None:
            raise ValueError("set daily_budget or lifetime_budget, not both")
        return self


class CampaignPolicy(_Strict):
    """How sends are grouped into MM campaigns and what each may spend."""

    per: Literal["page", "page_topic"] = Field(
        default="page", description="One campaign per page, or one per page and topic.")
    name: str = Field(default="{page_name} RN to MM",
                      description="Name template; fields: " + ", ".join("{%s}" % f for f in NAME_FIELDS))
    daily_budget: int | None = Field(default=None, gt=0, description="Minor currency units per day "
                                     "(an average, Meta may spend up to +75% on a single day).")
    lifetime_budget: int | None = Field(default=None, gt=0,
                                        description="Minor currency units over the whole run.")
    start: datetime | None = Field(default=None, description="Campaign start (UTC unless an offset "
                                   "is given). Default: the as-of date, 00:00 UTC.")
    end: datetime | None = Field(default=None, description="Campaign end. Default: start + 30 days "
                                 "for a lifetime budget, none for a daily budget (Meta's defaults).")

    _times = field_validator("start", "end", mode="before")(classmethod(lambda cls, v: _utc(v)))

    @field_validator("name")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            v.format(**{f: "x" for f in NAME_FIELDS})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"unknown or malformed field {exc} in the name template; use "
                             + ", ".join("{%s}" % f for f in NAME_FIELDS)) from None
        return v

    @model_validator(mode="after")
    def _checks(self) -> "CampaignPolicy":
        if self.daily_budget is not None and self.lifetime_budget is not None:
            raise ValueError("set daily_budget or lifetime_budget, not both")
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ContentMap(_Strict):
    """Which MM message the subscribers of a page and/or topic get.

    Matching, most specific first: page_id + topic, then the automatic choice (the most
    used converted content of that page and topic), then page_id alone, topic alone, and
    an entry with neither (the default for everything).
    """

    page_id: str | None = Field(default=None, description="Page this entry applies to (all if omitted).")
    topic: str | None = Field(default=None, description="RN topic_title this entry applies to "
                              "(all topics if omitted).")
    content: int | str | None = Field(default=None, description="RN content: contents.id (integer), "
                                      "its key, or its content_hash. Its converted MM message is sent.")
    message: dict[str, Any] | None = Field(default=None, description="An MM message written here "
                                           "(overrides the conversion); validated like the converter's output.")
    exclude: bool = Field(default=False, description="Send nothing to these subscribers.")

    @field_validator("page_id", mode="before")
    @classmethod
    def _pid(cls, v: Any) -> Any:
        return None if v is None else str(v)

    @model_validator(mode="after")
    def _something(self) -> "ContentMap":
        if not self.exclude and self.content is None and self.message is None:
            raise ValueError("give content = <id|key|hash>, message = {...} or exclude = true")
        if self.exclude and (self.content is not None or self.message is not None):
            raise ValueError("exclude = true cannot be combined with content or message")
        return self


class Schedule(_Strict):
    """When sends may go out, in each subscriber's local time."""

    window: str = Field(default="09:00-20:00", description="Local send window HH:MM-HH:MM in the "
                        "subscriber's time zone (tokens.timezone); an end at or before the start "
                        "runs past midnight.")
    default_timezone: str = Field(default="UTC", description="IANA zone used when a token's zone "
                                  "is missing or unknown.")
    start: datetime | None = Field(default=None, description="No send before this moment "
                                   "(default: the campaign start).")
    batch_size: int = Field(default=10_000, gt=0, description="Sends per batch.")
    batches_per_day: int = Field(default=24, gt=0, description="At most this many batches start "
                                 "per UTC day; later batches move to the next day.")
    warmup_minutes: int = Field(default=60, ge=0, description="No send until this long after the "
                                "campaign start (MM campaigns need a warm-up).")

    _times = field_validator("start", mode="before")(classmethod(lambda cls, v: _utc(v)))

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        parse_window(v)
        return v

    @field_validator("default_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone name, e.g. UTC or America/New_York") from None
        return v


class Cost(_Strict):
    """What one delivered message is expected to cost."""

    per_message: int | None = Field(default=None, ge=0, description="Minor units per delivered "
                                    "message for ad accounts without their own cost_per_message.")
    source: Literal["spec", "estimate"] = Field(
        default="spec", description="'estimate' asks Meta's message_delivery_estimate when "
        "MIGRATOR_ACCESS_TOKEN is set, and falls back to the spec's figures otherwise.")


class SubscriberValue(_Strict):
    """What one reachable subscriber is worth to the partner (reports' countdown; plans ignore it)."""

    amount: int = Field(ge=0, description="Minor units of `currency` per subscriber, e.g. 150 = USD 1.50.")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code, e.g. USD.")


class PlanSpec(_Strict):
    """A plan spec (TOML). See docs/plan.md."""

    name: str = Field(default="plan", description="A label for people.")
    allow_unbounded: bool = Field(default=False, description="Allow campaigns without a budget "
                                  "(the rules require one otherwise).")
    ad_accounts: list[AdAccount] = Field(default_factory=list)
    pages: dict[str, PageSpec] = Field(default_factory=dict,
                                       description="Per-page settings keyed by page id.")
    campaign: CampaignPolicy = Field(default_factory=CampaignPolicy)
    content: list[ContentMap] = Field(default_factory=list)
    schedule: Schedule = Field(default_factory=Schedule)
    cost: Cost = Field(default_factory=Cost)
    # reports only: excluded from the dump, so it never changes a plan's fingerprint
    value_per_subscriber: SubscriberValue | None = Field(
        default=None, exclude=True,
        description="Optional: the estimated value of one subscriber, e.g. { amount = 150, currency = \"USD\" }; "
                    "reports show what RN's end costs in this value. It does not change the plan.")

    @model_validator(mode="after")
    def _unique_accounts(self) -> "PlanSpec":
        seen = set()
        for a in self.ad_accounts:
            if a.id in seen:
                raise ValueError(f"ad account {a.id} is listed twice in ad_accounts")
            seen.add(a.id)
        return self

    def canonical_json(self) -> str:
        """Stable text of the effective spec (comments and layout do not count)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def parse_window(v: str) -> tuple[int, int]:
    """'HH:MM-HH:MM' -> (start minute, end minute) of the local day."""
    m = _WINDOW.match(v or "")
    if not m:
        raise ValueError("expected a local time window HH:MM-HH:MM, e.g. 09:00-20:00")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError("expected hours 00-23 and minutes 00-59, e.g. 09:00-20:00")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError("the window is empty: start and end are the same time")
    return start, end


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of the spec (what `migrator plan --schema` prints)."""
    return PlanSpec.model_json_schema()


def _key(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(path: str, exc: ValidationError) -> str:
    lines = []
    for e in exc.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if p not in ("int", "str"))  # union branch names
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (see `migrator plan --schema` or docs/plan.md for the keys)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        got = e.get("input")
        shown = "" if e["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) \
            else f" (got {got!r})"
        lines.append(f"{path}: {_key(loc)}: {msg}{shown}")
    # one line per problem, de-duplicated (union types report each branch)
    return "\n".join(dict.fromkeys(lines))


def read_spec_text(path: str | Path, encoding: str | None = None) -> str:
    """The spec file's text (UTF-8 / UTF-16 detected, or `encoding`); PlanError otherwise."""
    from migrator.errors import InputError
    from migrator.inputs import read_text

    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise PlanError(f"{p}: no such plan spec", hint="see plans/sample.toml for an example")
    try:
        return read_text(p, encoding=encoding, what="plan spec")
    except InputError as exc:
        raise PlanError(exc.message, hint=exc.hint) from None


def load_spec(path: str | Path, *, encoding: str | None = None) -> PlanSpec:
    """Read and validate a spec file; PlanError names the file, key and expectation."""
    p = Path(path)
    return spec_from_text(read_spec_text(p, encoding), where=str(p))


def spec_from_text(text: str, *, where: str = "<spec>") -> PlanSpec:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{where}: not valid TOML: {exc}", hint="see plans/sample.toml") from None
    except RecursionError:
        raise PlanError(f"{where}: nested too deeply to be a plan spec", hint="see plans/sample.toml") from None
    return spec_from_dict(raw, where=where)


INT64 = (-(2**63), 2**63 - 1)


def _oversized_ints(value: Any, path: str = "") -> list[str]:
    """Keys whose integer does not fit the workspace's 64-bit columns (SQLite, JSON readers)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [path or "<top>"] if not INT64[0] <= value <= INT64[1] else []
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in _oversized_ints(v, f"{path}.{key}" if path else str(key))]
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in _oversized_ints(v, f"{path}[{i}]")]
    return []


def spec_from_dict(raw: dict[str, Any], *, where: str = "<spec>") -> PlanSpec:
    try:
        big = _oversized_ints(raw)
    except RecursionError:
        raise PlanError(f"{where}: nested too deeply to be a plan spec") from None
    if big:
        raise PlanError(f"{where}: {', '.join(big[:5])}: integer too large (at most {INT64[1]:,})",
                        hint="budgets are in minor currency units; check the number of digits")
    try:
        return PlanSpec.model_validate(raw)
    except ValidationError as exc:
        raise PlanError(format_validation_error(where, exc),
                        hint="`migrator plan --schema` prints every key; docs/plan.md explains them") from None

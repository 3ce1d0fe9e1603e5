"""Where a subscriber is: explicit country, else candidates inferred from the IANA time zone.

Meta exposes no country per token, only `notification_messages_timezone`. The order, most
trusted first:

1. `explicit`  - a country the partner gave (tokens.country);
2. `mm_error`  - an MM send failed with 2300032, so Meta places the token in an excluded
                 region (mm_feedback.state = 'wrong_region'); this beats an inference, and
                 when it contradicts an explicit country the token goes to review;
3. `timezone`  - the one country tzdata's `zone.tab` names for the zone name the subscriber
                 carries, read before any link is resolved;
4. `unknown`   - no country, no usable zone (missing, UTC, Etc/*, offset-only or unknown).

Time-zone inference: `zone.tab` lists one
country per zone it names (Europe/London -> GB, Europe/Oslo -> NO, Asia/Tokyo -> JP), and
tzdata keeps a row for many `backward` links too (Europe/Jersey -> JE, Arctic/Longyearbyen ->
SJ): such a name keeps its own country even though it links elsewhere. A legacy alias that
`zone.tab` does not list (US/Pacific, Asia/Calcutta, Japan, GB) maps through its link, one step
at a time, to the first name `zone.tab` lists. `zone1970.tab` only groups countries whose clocks
have agreed since 1970 (Europe/Berlin: DE, DK, NO, SE, SJ); it says nothing about where a person
lives, so those other countries are kept as information (`Resolution.shared`), never as
ambiguity. Rule-only and offset-only names (UTC, GMT, Etc/*, CET, EST5EDT, ...) name no place
and resolve to unknown even though newer tzdata links some of them to a city.
Lookups ignore case. Every inference is an inference; reports say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from migrator.countries import normalize_country

EXPLICIT = "explicit"
TIMEZONE = "timezone"
MM_ERROR = "mm_error"
UNKNOWN = "unknown"

# Names that denote an offset or a DST rule, not a place.
NON_GEOGRAPHIC = {
    "cet", "cst6cdt", "eet", "est", "est5edt", "hst", "met", "mst", "mst7mdt", "pst8pdt",
    "wet", "factory", "gmt", "gmt0", "gmt+0", "gmt-0", "greenwich", "uct", "utc",
    "universal", "zulu",
}


@dataclass(frozen=True)
class ZoneTables:
    zone_tab: dict[str, str]              # name -> country (one row per country and zone)
    zone1970: dict[str, tuple[str, ...]]  # name -> countries whose clocks agree since 1970
    links: dict[str, str]                 # link name -> target name
    by_lower: dict[str, str]              # lower-case name -> proper name (every known name)


def _read(name: str) -> str:
    return resources.files("tzdata").joinpath("zoneinfo", name).read_text("utf-8")


@lru_cache(maxsize=1)
def zone_tables() -> ZoneTables:
    """Parse tzdata's zone.tab, zone1970.tab and the link lines of tzdata.zi (once)."""
    zone_tab: dict[str, str] = {}
    for line in _read("zone.tab").splitlines():
        if line and not line.startswith("#"):
            cols = line.split("\t")
            zone_tab[cols[2]] = cols[0].upper()
    zone1970: dict[str, tuple[str, ...]] = {}
    for line in _read("zone1970.tab").splitlines():
        if line and not line.startswith("#"):
            cols = line.split("\t")
            zone1970[cols[2]] = tuple(c.upper() for c in cols[0].split(","))
    links: dict[str, str] = {}
    names: set[str] = set(zone_tab) | set(zone1970)
    for line in _read("tzdata.zi").splitlines():
        if line.startswith("L "):
            _, target, link = line.split()[:3]
            links[link] = target
            names.update((link, target))
        elif line.startswith("Z "):
            names.add(line.split()[1])
    return ZoneTables(zone_tab, zone1970, links, {n.lower(): n for n in names})


def canonical_zone(name: str) -> str | None:
    """The proper tzdata name a (case-insensitive) zone or link name resolves to, else None."""
    t = zone_tables()
    proper = t.by_lower.get(name.strip().lower())
    seen = 0
    while proper in t.links and seen < 10:
        proper = t.links[proper]
        seen += 1
    return proper


def _geographic_name(name: str | None) -> str | None:
    """The proper tzdata name of a zone that may name a place, else None."""
    if not name or not name.strip():
        return None
    key = name.strip().lower()
    if key in NON_GEOGRAPHIC or key.startswith(("etc/", "gmt+", "gmt-", "utc+", "utc-")):
        return None
    return zone_tables().by_lower.get(key)


@lru_cache(maxsize=4096)
def zone_country(name: str | None) -> str | None:
    """The one country `zone.tab` names for this zone name (links followed only when needed)."""
    proper = _geographic_name(name)
    t = zone_tables()
    seen = 0
    while proper is not None and seen < 10:
        if proper in t.zone_tab:
            return t.zone_tab[proper]
        if proper.lower().startswith("etc/"):
            return None
        proper = t.links.get(proper)
        seen += 1
    return None


@lru_cache(maxsize=4096)
def zone_sharing(name: str | None) -> tuple[str, ...]:
    """Other countries whose clocks agree with this zone since 1970 (information only)."""
    country = zone_country(name)
    if country is None:
        return ()
    target = canonical_zone(_geographic_name(name) or "")
    return tuple(sorted(set(zone_tables().zone1970.get(target or "", ())) - {country}))


def timezone_candidates(name: str | None) -> tuple[str, ...]:
    """Where the zone name puts a subscriber: (country,) or () when unknown."""
    c = zone_country(name)
    return (c,) if c else ()


@dataclass(frozen=True)
class Resolution:
    """Where a token's recipient may be, and which source said so."""

    source: str                    # explicit | timezone | mm_error | unknown
    candidates: tuple[str, ...]    # ISO codes; () = unknown (any country)
    conflict: bool = False         # explicit country contradicted by an MM 2300032
    mm_excluded_region: bool = False  # MM placed the token in its excluded region
    shared: tuple[str, ...] = ()   # information: other countries on the same clock (zone1970)

    @property
    def country(self) -> str | None:
        return self.candidates[0] if len(self.candidates) == 1 else None


def resolve_region(country: str | None, timezone: str | None, mm_state: str | None,
                   mm_excluded: frozenset[str]) -> Resolution:
    """Resolve one recipient; `mm_excluded` is the MM recipient-exclusion set in force."""
    try:
        explicit = normalize_country(country)
    except ValueError:
        explicit = None
    wrong_region = mm_state == "wrong_region"
    if explicit:
        if wrong_region and explicit not in mm_excluded:
            return Resolution(EXPLICIT, tuple(sorted({explicit} | set(mm_excluded))),
                              conflict=True, mm_excluded_region=True)
        return Resolution(EXPLICIT, (explicit,))
    if wrong_region:
        return Resolution(MM_ERROR, tuple(sorted(mm_excluded)), mm_excluded_region=True)
    cands = timezone_candidates(timezone)
    if cands:
        return Resolution(TIMEZONE, cands, shared=zone_sharing(timezone))
    return Resolution(UNKNOWN, ())

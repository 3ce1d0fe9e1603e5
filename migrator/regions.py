"""Where a subscriber is: explicit country, else candidates inferred from the IANA time zone.

Meta exposes no country per token, only `notification_messages_timezone`. The order is
(PRODUCT.md "Where a subscriber is"):

1. `explicit`  - a country the partner gave (tokens.country);
2. `mm_error`  - an MM send failed with 2300032, so Meta places the token in an excluded
                 region (tokens.mm_state = 'wrong_region'); this beats an inference, and
                 when it contradicts an explicit country the token goes to review;
3. `timezone`  - a candidate set from tzdata's `zone.tab` and `zone1970.tab`;
4. `unknown`   - no country, no usable zone (missing, UTC, Etc/*, offset-only or unknown).

Time-zone inference: the candidates of a zone name are every country `zone1970.tab` lists
for its canonical zone (links resolved through tzdata's `L` lines in `tzdata.zi`, e.g.
Asia/Calcutta -> Asia/Kolkata, Europe/Oslo -> Europe/Berlin) plus the `zone.tab` country
of the name itself and of its target. This is deliberately conservative: Europe/Berlin
gives DE, DK, NO, SE, SJ (clocks agree since 1970), so a verdict is certain only where all
of them agree - mm-api.md section 4 warns that Meta's own region decision is undocumented.
Rule-only and offset-only names (UTC, GMT, Etc/*, CET, EST5EDT, ...) name no place and
resolve to unknown even though newer tzdata links some of them to a city.
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


@lru_cache(maxsize=4096)
def timezone_candidates(name: str | None) -> tuple[str, ...]:
    """Candidate countries (sorted ISO codes) for a time-zone name; () means unknown."""
    if not name or not name.strip():
        return ()
    key = name.strip().lower()
    if key in NON_GEOGRAPHIC or key.startswith(("etc/", "gmt+", "gmt-", "utc+", "utc-")):
        return ()
    t = zone_tables()
    proper = t.by_lower.get(key)
    if proper is None:
        return ()
    target = canonical_zone(proper)
    if target is None or target.lower().startswith("etc/"):
        return ()
    found = set(t.zone1970.get(target, ()))
    for n in (proper, target):
        if n in t.zone_tab:
            found.add(t.zone_tab[n])
    return tuple(sorted(found))


@dataclass(frozen=True)
class Resolution:
    """Where a token's recipient may be, and which source said so."""

    source: str                    # explicit | timezone | mm_error | unknown
    candidates: tuple[str, ...]    # ISO codes; () = unknown (any country)
    conflict: bool = False         # explicit country contradicted by an MM 2300032
    mm_excluded_region: bool = False  # MM placed the token in its excluded region

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
        return Resolution(TIMEZONE, cands)
    return Resolution(UNKNOWN, ())

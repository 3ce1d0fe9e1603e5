"""Where the sample's subscribers live, and what the data lets one conclude about it.

The sample needs a ground truth for region inference, so this module reads the installed
tzdata (zone.tab, tzdata.zi links) rather than hard-coding answers: a zone's country is the
one zone.tab names for the zone name itself, else (a legacy alias such as Asia/Calcutta) for
the first name along its links that zone.tab lists. zone1970.tab only groups clocks, so it
does not make a zone ambiguous. MM may deliver to
recipients anywhere except the EU-27, JP, KR, AU and the UK (Meta's MM FAQ,
https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/faq).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

# EU-27 by ISO 3166 code (the project default reading of "EU"; EEA is a rules option).
EU27 = frozenset("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
                 .split())
# Recipient regions the MM API cannot deliver to = the geos where RN survives.
MM_EXCLUDED = EU27 | {"JP", "KR", "AU", "GB"}

REGION_CLASSES = ("mm_allowed", "mm_excluded", "ambiguous", "unknown")


def _read(name: str) -> str:
    return resources.files("tzdata").joinpath("zoneinfo", name).read_text("utf-8")


@lru_cache(maxsize=2)
def zone_table(name: str) -> dict[str, tuple[str, ...]]:
    """{zone: countries} from zone.tab or zone1970.tab."""
    out: dict[str, tuple[str, ...]] = {}
    for line in _read(name).splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            out[parts[2].strip()] = tuple(c.strip().upper() for c in parts[0].split(","))
    return out


@lru_cache(maxsize=1)
def zone_links() -> dict[str, str]:
    """{link name: target} from tzdata.zi ("L target link" lines)."""
    out: dict[str, str] = {}
    for line in _read("tzdata.zi").splitlines():
        if line.startswith("L "):
            _, target, link = line.split()[:3]
            out[link] = target
    return out


def canonical_zone(zone: str) -> str:
    links = zone_links()
    seen = set()
    while zone in links and zone not in seen:
        seen.add(zone)
        zone = links[zone]
    return zone


def candidate_countries(zone: str | None) -> tuple[str, ...]:
    """Countries a subscriber with this zone may be in; () for UTC, Etc/*, missing or bogus."""
    if zone is None or not zone.strip():
        return ()
    z = zone.strip()
    if z.lower() in ("utc", "gmt", "cet", "est5edt") or z.lower().startswith("etc/"):
        return ()
    ztab, links = zone_table("zone.tab"), zone_links()
    for _ in range(10):
        if z in ztab:
            return ztab[z]
        if z not in links:
            return ()
        z = links[z]
    return ()


def country_class(country: str) -> str:
    return "mm_excluded" if country.upper() in MM_EXCLUDED else "mm_allowed"


@lru_cache(maxsize=4096)
def zone_class(zone: str | None) -> str:
    cands = candidate_countries(zone)
    if not cands:
        return "unknown"
    verdicts = {country_class(c) for c in cands}
    return verdicts.pop() if len(verdicts) == 1 else "ambiguous"


def region_class(explicit_country: str | None, zone: str | None) -> str:
    """An explicit country decides; otherwise the zone's candidate countries do."""
    if explicit_country:
        return country_class(explicit_country)
    return zone_class(zone)


# (true country, zone, weight, the class we intend; tests check it against tzdata).
# Link names (Asia/Calcutta, US/Eastern, Japan, ...) appear next to canonical ones.
GEOS: tuple[tuple[str, str | None, int, str], ...] = (
    # MM-allowed recipients
    ("US", "America/New_York", 40, "mm_allowed"), ("US", "America/Chicago", 22, "mm_allowed"),
    ("US", "America/Los_Angeles", 22, "mm_allowed"), ("US", "America/Denver", 6, "mm_allowed"),
    ("US", "America/Phoenix", 4, "mm_allowed"), ("US", "US/Eastern", 5, "mm_allowed"),
    ("BR", "America/Sao_Paulo", 35, "mm_allowed"), ("BR", "America/Manaus", 4, "mm_allowed"),
    ("BR", "America/Recife", 5, "mm_allowed"), ("BR", "Brazil/East", 3, "mm_allowed"),
    ("IN", "Asia/Kolkata", 30, "mm_allowed"), ("IN", "Asia/Calcutta", 15, "mm_allowed"),
    ("ID", "Asia/Jakarta", 25, "mm_allowed"), ("ID", "Asia/Makassar", 4, "mm_allowed"),
    ("MX", "America/Mexico_City", 22, "mm_allowed"), ("MX", "America/Tijuana", 4, "mm_allowed"),
    ("MX", "Mexico/General", 2, "mm_allowed"),
    ("PH", "Asia/Manila", 22, "mm_allowed"),
    ("VN", "Asia/Ho_Chi_Minh", 14, "mm_allowed"), ("VN", "Asia/Saigon", 5, "mm_allowed"),
    ("VN", "Asia/Bangkok", 3, "mm_allowed"), ("TH", "Asia/Bangkok", 14, "mm_allowed"),
    ("SA", "Asia/Riyadh", 10, "mm_allowed"), ("AE", "Asia/Dubai", 9, "mm_allowed"),
    ("SG", "Asia/Singapore", 6, "mm_allowed"), ("MY", "Asia/Kuala_Lumpur", 6, "mm_allowed"),
    ("MY", "Asia/Kuching", 2, "mm_allowed"), ("CO", "America/Bogota", 7, "mm_allowed"),
    ("CL", "America/Santiago", 5, "mm_allowed"), ("PE", "America/Lima", 5, "mm_allowed"),
    ("AR", "America/Argentina/Buenos_Aires", 5, "mm_allowed"),
    ("CA", "America/Toronto", 6, "mm_allowed"), ("CA", "America/Vancouver", 3, "mm_allowed"),
    ("NZ", "Pacific/Auckland", 3, "mm_allowed"), ("HK", "Asia/Hong_Kong", 4, "mm_allowed"),
    ("TW", "Asia/Taipei", 4, "mm_allowed"), ("IL", "Asia/Jerusalem", 3, "mm_allowed"),
    ("TR", "Europe/Istanbul", 4, "mm_allowed"), ("EG", "Africa/Cairo", 3, "mm_allowed"),
    ("NG", "Africa/Lagos", 3, "mm_allowed"),
    # excluded geos (RN survives there): EU members, JP, KR, AU
    ("ES", "Europe/Madrid", 10, "mm_excluded"), ("ES", "Atlantic/Canary", 1, "mm_excluded"),
    ("NL", "Europe/Amsterdam", 6, "mm_excluded"), ("BE", "Europe/Brussels", 3, "mm_excluded"),
    ("PL", "Europe/Warsaw", 6, "mm_excluded"), ("PT", "Europe/Lisbon", 3, "mm_excluded"),
    ("IE", "Europe/Dublin", 3, "mm_excluded"), ("AT", "Europe/Vienna", 2, "mm_excluded"),
    ("GR", "Europe/Athens", 2, "mm_excluded"), ("RO", "Europe/Bucharest", 3, "mm_excluded"),
    ("CZ", "Europe/Prague", 2, "mm_excluded"), ("HU", "Europe/Budapest", 2, "mm_excluded"),
    ("JP", "Asia/Tokyo", 10, "mm_excluded"), ("JP", "Japan", 2, "mm_excluded"),
    ("KR", "Asia/Seoul", 7, "mm_excluded"), ("KR", "ROK", 1, "mm_excluded"),
    ("AU", "Australia/Sydney", 6, "mm_excluded"), ("AU", "Australia/Melbourne", 4, "mm_excluded"),
    ("AU", "Australia/Perth", 2, "mm_excluded"), ("AU", "Australia/ACT", 1, "mm_excluded"),
    # zones zone1970.tab shares with other countries: the zone's own country decides
    ("DE", "Europe/Berlin", 12, "mm_excluded"),     # zone1970: DE,DK,NO,SE,SJ
    ("NO", "Europe/Oslo", 2, "mm_allowed"),         # link to Europe/Berlin, zone.tab: NO
    ("FR", "Europe/Paris", 9, "mm_excluded"),       # zone1970: FR,MC
    ("IT", "Europe/Rome", 7, "mm_excluded"),        # zone1970: IT,SM,VA
    ("GB", "Europe/London", 10, "mm_excluded"),     # zone1970: GB,GG,IM,JE
    ("GB", "GB", 1, "mm_excluded"),                 # link to Europe/London
    ("CH", "Europe/Zurich", 3, "mm_allowed"),       # zone1970: CH,DE,LI
    ("FI", "Europe/Helsinki", 2, "mm_excluded"),    # zone1970: FI,AX
    ("RS", "Europe/Belgrade", 2, "mm_allowed"),     # zone1970: RS,BA,HR,ME,MK,SI
    # nothing to infer from: UTC, Etc/*, missing or bogus zones (true country drawn apart)
    # (UTC is the opt-in template's default, so it is common)
    ("*", "UTC", 40, "unknown"), ("*", "Etc/UTC", 6, "unknown"), ("*", "Etc/GMT+3", 3, "unknown"),
    ("*", "Etc/GMT-7", 3, "unknown"), ("*", "GMT", 3, "unknown"), ("*", None, 20, "unknown"),
    ("*", "America/Nowhere", 1, "unknown"), ("*", "Mars/Olympus_Mons", 1, "unknown"),
)

# true countries for subscribers whose zone says nothing (weights follow the estate's mix)
UNKNOWN_ZONE_COUNTRIES = (("US", 6), ("BR", 4), ("IN", 4), ("ID", 2), ("MX", 2), ("PH", 2),
                          ("DE", 2), ("GB", 2), ("FR", 1), ("JP", 1), ("ES", 1), ("AU", 1),
                          ("VN", 1), ("TH", 1))

"""ISO 3166 country codes (from the tzdata package's iso3166.tab) and partner spellings.

Partners write "UK" for the United Kingdom; Meta's own lists do too. We store ISO codes
(GB) and accept UK as an alias.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

ALIASES = {"UK": "GB"}


@lru_cache(maxsize=1)
def iso_countries() -> dict[str, str]:
    """{code: name} for every ISO 3166 alpha-2 code tzdata knows."""
    text = resources.files("tzdata").joinpath("zoneinfo", "iso3166.tab").read_text("utf-8")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        code, _, name = line.partition("\t")
        out[code.strip().upper()] = name.strip()
    return out


def normalize_country(value: str | None) -> str | None:
    """Return the ISO alpha-2 code for `value`, None for empty; raise ValueError if unknown."""
    if value is None:
        return None
    v = str(value).strip().upper()
    if not v:
        return None
    v = ALIASES.get(v, v)
    if v not in iso_countries():
        raise ValueError(f"unknown country code {value!r} (use ISO 3166 alpha-2, e.g. US, GB, DE)")
    return v

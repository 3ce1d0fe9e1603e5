"""Region resolution: explicit country, tzdata zone.tab/zone1970.tab inference, links, unknowns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.countries import iso_countries
from migrator.regions import (EXPLICIT, MM_ERROR, TIMEZONE, UNKNOWN, canonical_zone,
                              resolve_region, timezone_candidates, zone_tables)
from migrator.rules import load_rules
from _hyp import examples

EXCLUDED = load_rules().mm_excluded_recipients()


@pytest.mark.parametrize("zone, expected", [
    ("America/New_York", ("US",)),
    ("Europe/Madrid", ("ES",)),
    ("Europe/Berlin", ("DE",)),          # zone.tab's own country, not zone1970's clock group
    ("Europe/Oslo", ("NO",)),            # a link to Europe/Berlin that zone.tab still lists
    ("Europe/Zurich", ("CH",)),
    ("Europe/London", ("GB",)),
    ("Europe/Jersey", ("JE",)),          # backward link kept with its own zone.tab country
    ("Arctic/Longyearbyen", ("SJ",)),
    ("Asia/Kolkata", ("IN",)),
    ("Asia/Calcutta", ("IN",)),          # legacy alias -> Asia/Kolkata
    ("asia/calcutta", ("IN",)),          # case does not matter
    ("US/Eastern", ("US",)),
    ("US/Pacific", ("US",)),
    ("Asia/Saigon", ("VN",)),
    ("Europe/Kiev", ("UA",)),
    ("Japan", ("JP",)),                  # link to Asia/Tokyo (zone1970 shares it with AU)
    ("Asia/Tokyo", ("JP",)),
    ("America/Montreal", ("CA",)),       # link to America/Toronto
    ("Europe/Belfast", ("GB",)),
    ("GB", ("GB",)),
])
def test_timezone_candidates(zone, expected):
    assert timezone_candidates(zone) == expected


@pytest.mark.parametrize("zone", [None, "", "  ", "UTC", "Etc/UTC", "Etc/GMT+3", "GMT", "Zulu",
                                  "CET", "EST5EDT", "EST", "Factory", "Mars/Olympus_Mons",
                                  "GMT+2", "UTC-05:00"])
def test_non_geographic_or_unknown_zones_resolve_to_unknown(zone):
    assert timezone_candidates(zone) == ()
    assert resolve_region(None, zone, None, EXCLUDED).source == UNKNOWN


def test_links_resolve_to_their_target():
    assert canonical_zone("Asia/Calcutta") == "Asia/Kolkata"
    assert canonical_zone("US/Eastern") == "America/New_York"
    assert canonical_zone("nowhere/at_all") is None


def test_explicit_country_wins_and_uk_means_gb():
    r = resolve_region("uk", "America/New_York", None, EXCLUDED)
    assert (r.source, r.candidates, r.country) == (EXPLICIT, ("GB",), "GB")


def test_invalid_explicit_country_falls_back_to_the_time_zone():
    r = resolve_region("ZZ", "Asia/Kolkata", None, EXCLUDED)
    assert (r.source, r.candidates) == (TIMEZONE, ("IN",))


def test_mm_2300032_places_the_token_in_the_excluded_region():
    r = resolve_region(None, "America/New_York", "wrong_region", EXCLUDED)
    assert r.source == MM_ERROR and set(r.candidates) == EXCLUDED and r.mm_excluded_region


def test_explicit_country_contradicted_by_mm_is_a_conflict():
    r = resolve_region("US", None, "wrong_region", EXCLUDED)
    assert r.source == EXPLICIT and r.conflict and "US" in r.candidates and "DE" in r.candidates
    consistent = resolve_region("DE", None, "wrong_region", EXCLUDED)
    assert not consistent.conflict and consistent.candidates == ("DE",)


def test_every_zone_tab_name_gives_exactly_its_country():
    t = zone_tables()
    for name, country in t.zone_tab.items():
        assert timezone_candidates(name) == (country,), name


def test_other_countries_on_the_same_clock_are_information_not_candidates():
    r = resolve_region(None, "Europe/Berlin", None, EXCLUDED)
    assert (r.source, r.candidates, r.country) == (TIMEZONE, ("DE",), "DE")
    assert r.shared == ("DK", "NO", "SE", "SJ")
    assert resolve_region(None, "Asia/Tokyo", None, EXCLUDED).shared == ("AU",)


@settings(max_examples=examples(200), deadline=None)
@given(st.sampled_from(sorted(zone_tables().links)))
def test_every_link_gives_iso_candidates_or_unknown(link):
    cands = timezone_candidates(link)
    assert all(c in iso_countries() for c in cands)
    assert list(cands) == sorted(set(cands))
    # whatever the spelling, the answer is the same
    assert timezone_candidates(link.upper()) == cands

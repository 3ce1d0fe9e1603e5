"""Done-when of issue 16: a held-back estate, written by hand (not by `migrator sample`), with
European, Asian and American zones gets the verdicts a person reading the zone names would give.

The files in tests/data/heldback/ are shaped like a partner's spreadsheet export (CRLF line
ends, an act_ prefixed ad account); they go in through the CLI exactly as the README says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "heldback"

# What a person reading the zone name says (after the 2026-02-10 cut-off, recipient geo decides).
US_BUSINESS = {
    "nw-lon-01": ("stay_on_rn", "GB"),   # London: UK, RN survives, MM excluded
    "nw-ber-02": ("stay_on_rn", "DE"),   # Berlin: Germany (EU)
    "nw-osl-03": ("migrate", "NO"),      # Oslo: Norway, not EU
    "nw-zrh-04": ("migrate", "CH"),      # Zurich: Switzerland, not EU
    "nw-par-05": ("stay_on_rn", "FR"),
    "nw-dub-06": ("stay_on_rn", "IE"),
    "nw-ist-07": ("migrate", "TR"),
    "nw-jer-08": ("migrate", "JE"),      # Jersey: a Crown Dependency, not the UK
    "nw-tyo-09": ("stay_on_rn", "JP"),
    "nw-sel-10": ("stay_on_rn", "KR"),
    "nw-cal-11": ("migrate", "IN"),      # Calcutta: the old name of Kolkata
    "nw-sgp-12": ("migrate", "SG"),
    "nw-sgn-13": ("migrate", "VN"),      # Saigon: Ho Chi Minh City
    "nw-ny-14": ("migrate", "US"),
    "nw-usp-15": ("migrate", "US"),      # US/Pacific: a legacy alias of Los Angeles
    "nw-sao-16": ("migrate", "BR"),
    "nw-mtl-17": ("migrate", "CA"),
    "nw-syd-18": ("stay_on_rn", "AU"),
    "nw-utc-19": ("review", None),       # UTC, CET, EST5EDT, Etc/*: no place named
    "nw-cet-20": ("review", None),
    "nw-est-21": ("review", None),
    "nw-etc-22": ("review", None),
}
DE_BUSINESS = {
    "ks-ber-01": ("stay_on_rn", "DE"),   # exempt geo: RN keeps working
    "ks-ny-02": ("blocked", "US"),       # MM closed to a DE business, RN gone for the US
    "ks-vie-03": ("stay_on_rn", "AT"),
}


@pytest.mark.parametrize("as_of", ["2026-03-01", "2026-01-15"])
def test_heldback_estate_gets_the_verdicts_a_person_would_give(cli, db_path, as_of):
    assert cli("ingest", "pages", DATA / "pages.csv").exit_code == 0
    r = cli("ingest", "tokens", DATA / "tokens.csv")
    assert r.exit_code == 0, r.output
    r = cli("audit", "--as-of", as_of, "--json")
    assert r.exit_code == 0, r.output
    from migrator.store import open_workspace
    ws = open_workspace(db_path)
    try:
        got = {row["token"]: (row["verdict"], row["region"], row["detail"], row["region_source"])
               for row in ws.db.query("SELECT token, verdict, region, detail, region_source"
                                      " FROM v_audit_latest_tokens")}
    finally:
        ws.close()
    # the verdict is the lasting path: the same on both sides of the cut-off (issue 16.2)
    for tok, (verdict, region) in {**US_BUSINESS, **DE_BUSINESS}.items():
        assert got[tok][:2] == (verdict, region), tok
    assert got["nw-ny-14"][3] == "timezone"
    # Berlin's clock is shared with DK, NO, SE, SJ: said as information, not as doubt
    assert "DK, NO, SE, SJ" in got["nw-ber-02"][2]
    summary = json.loads(r.output)
    assert summary["verdicts"]["review"] == 4 and summary["verdicts"]["blocked"] == 1

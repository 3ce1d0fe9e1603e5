"""Rules as data: the packaged file, overrides, malformed files, `migrator rules show`."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.errors import RulesError
from migrator.rules import load_rules
from _hyp import examples


def test_packaged_rules_hold_the_product_dates_and_lists():
    r = load_rules()
    assert r.mm_launch.value == date(2025, 7, 1)
    assert r.rn_integration_stop.value == date(2025, 9, 1)
    assert r.rn_cadence_change.value == date(2025, 9, 1)
    assert r.rn_cadence_hours.value == 48 and r.rn_cadence_hours_before_change.value == 24
    assert r.rn_deprecation_announced.value == date(2026, 1, 12)
    assert r.rn_discontinuation.value == date(2026, 2, 10)
    assert r.rn_exempt_geos.value == ["AU", "EU", "JP", "KR", "GB"]  # UK is stored as GB
    assert sorted(r.mm_business_countries.value) == sorted(
        "AU BR CL CO HK IN ID IL MY MX NZ PE PH SA SG TW TH AE US VN".split())
    assert len(r.eu_members.value) == 27
    assert r.mm_cadence_hours.value == 12
    assert r.rn_exemption_basis.value == "recipient"
    assert r.eu_definition.value == "EU27"
    assert r.warmup_wait_limit_hours.value == 3
    assert r.mm_button_types.value == ["web_url"] and r.mm_min_daily_budget.value == {"USD": 100}
    assert r.plan_budget_required.value is True
    # MM recipient exclusions are exactly the geos where RN survives
    assert r.mm_excluded_recipients() == r.rn_exempt_countries()
    assert {"DE", "FR", "JP", "KR", "AU", "GB"} <= r.mm_excluded_recipients()
    assert "NO" not in r.mm_excluded_recipients() and "US" not in r.mm_excluded_recipients()


def test_every_entry_has_sources_and_a_verified_date():
    r = load_rules()
    for name in r.entry_names():
        e = getattr(r, name)
        assert e.sources and all(s.startswith("http") for s in e.sources), name
        assert isinstance(e.verified, date), name
        assert e.origin == "package"


def test_fingerprint_is_stable_and_tracks_values_only(tmp_path):
    a, b = load_rules(), load_rules()
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 64
    same = tmp_path / "same.toml"
    same.write_text('[mm_launch]\nsources = ["https://example.org/x"]\n')
    assert load_rules(same).fingerprint() == a.fingerprint()
    other = tmp_path / "other.toml"
    other.write_text("mm_cadence_hours = 24\n")
    assert load_rules(other).fingerprint() != a.fingerprint()


def test_override_replaces_only_the_entries_and_fields_it_names(tmp_path):
    f = tmp_path / "o.toml"
    f.write_text(
        'mm_cadence_hours = 24\n'
        '[eu_definition]\nvalue = "EEA"\n'
        '[rn_discontinuation]\nvalue = 2026-03-01\nsources = ["https://example.org/notice"]\n'
        'verified = 2026-10-01\n')
    r = load_rules(f)
    assert r.mm_cadence_hours.value == 24 and r.mm_cadence_hours.origin == str(f)
    # omitted fields are kept from the package
    assert r.mm_cadence_hours.sources == load_rules().mm_cadence_hours.sources
    assert r.eu_definition.value == "EEA"
    assert {"IS", "LI", "NO"} <= r.mm_excluded_recipients()
    assert r.rn_discontinuation.value == date(2026, 3, 1)
    assert r.rn_discontinuation.sources == ["https://example.org/notice"]
    assert r.rn_discontinuation.verified == date(2026, 10, 1)
    assert r.mm_launch.origin == "package"
    assert r.version == load_rules().version + "+local"
    assert r.origins() == sorted([str(f), "package"])


def test_override_may_set_its_own_version(tmp_path):
    f = tmp_path / "o.toml"
    f.write_text('version = "acme-1"\nwarmup_wait_limit_hours = 5\n')
    r = load_rules(f)
    assert r.version == "acme-1" and r.warmup_wait_limit_hours.value == 5


@pytest.mark.parametrize("text, needle", [
    ('[mm_business_countries]\nvalue = ["US", "XX"]\n', "mm_business_countries.value"),
    ("mm_cadence_hours = 6\n", "mm_cadence_hours.value"),
    ('[rn_exemption_basis]\nvalue = "page"\n', "rn_exemption_basis.value"),
    ('[rn_discontinuation]\nvalue = "soon"\n', "rn_discontinuation.value"),
    ('[mm_launch]\nsources = ["not a url"]\n', "mm_launch.sources"),
    ("[mm_launch]\nsources = []\n", "mm_launch.sources"),
    ("warmup_wait_limit_hours = 0\n", "warmup_wait_limit_hours.value"),
    ("mm_button_types = [\"phone_number\"]\n", "mm_button_types.value"),
    ("mm_min_daily_budget = { USDOLLAR = 100 }\n", "mm_min_daily_budget.value"),
    ('[eu_definition]\nvalue = "EEA"\ncolour = "blue"\n', "'eu_definition' has unknown field"),
    ("mm_cadense_hours = 12\n", "unknown rules entry 'mm_cadense_hours'"),
    ("this is = not toml [\n", "not valid TOML"),
])
def test_malformed_rules_file_names_the_entry(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(RulesError) as exc:
        load_rules(f)
    assert needle in exc.value.message
    assert str(f) in exc.value.message
    assert exc.value.hint


def test_unknown_entry_suggests_the_close_name(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("mm_cadense_hours = 12\n")
    with pytest.raises(RulesError) as exc:
        load_rules(f)
    assert "mm_cadence_hours" in exc.value.hint


def test_missing_rules_file_is_a_clear_error(tmp_path):
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules(tmp_path / "nope.toml")


@settings(max_examples=examples(30), deadline=None)
@given(cadence=st.sampled_from([12, 24]), basis=st.sampled_from(["recipient", "business", "either"]),
       eu=st.sampled_from(["EU27", "EEA"]), wait=st.integers(1, 48))
def test_any_valid_option_combination_loads_and_is_fingerprinted(tmp_path_factory, cadence, basis,
                                                                  eu, wait):
    f = tmp_path_factory.mktemp("r") / "o.toml"
    f.write_text(f'mm_cadence_hours = {cadence}\nrn_exemption_basis = "{basis}"\n'
                 f'eu_definition = "{eu}"\nwarmup_wait_limit_hours = {wait}\n')
    r = load_rules(f)
    assert (r.mm_cadence_hours.value, r.rn_exemption_basis.value, r.eu_definition.value,
            r.warmup_wait_limit_hours.value) == (cadence, basis, eu, wait)
    assert r.fingerprint() == load_rules(f).fingerprint()


def test_cli_rules_show_text_and_json(cli, tmp_path):
    out = cli("rules", "show")
    assert out.exit_code == 0
    assert "rn_discontinuation = 2026-02-10" in out.output
    assert "https://developers.facebook.com/" in out.output
    f = tmp_path / "o.toml"
    f.write_text("mm_cadence_hours = 24\n")
    out = cli("rules", "show", "--rules", f, "--json")
    data = json.loads(out.output)
    assert data["rules"]["mm_cadence_hours"] == {
        "value": 24, "sources": data["rules"]["mm_cadence_hours"]["sources"],
        "verified": "2026-06-30", "note": data["rules"]["mm_cadence_hours"]["note"],
        "used_by": ["audit", "executor", "emulator"], "origin": str(f)}
    assert data["rules"]["mm_launch"]["origin"] == "package"
    assert data["version"].endswith("+local") and len(data["fingerprint"]) == 64


def test_cli_rules_show_malformed_file_exits_1_without_traceback(cli, tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[eu_definition]\nvalue = "EFTA"\n')
    out = cli("rules", "show", "--rules", f)
    assert out.exit_code == 1
    assert "error:" in out.output and "eu_definition.value" in out.output
    assert "Traceback" not in out.output

"""Plan spec validation: every error names the file, the key and what is expected."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.errors import PlanError
from migrator.plan import load_spec, spec_from_dict, spec_schema
from migrator.plan.spec import parse_window

from _plan import BASE_SPEC


def err(tmp_path, text, name="bad.toml") -> str:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(PlanError) as e:
        load_spec(p)
    return e.value.message


def test_base_spec_loads(tmp_path):
    p = tmp_path / "ok.toml"
    p.write_text(BASE_SPEC)
    s = load_spec(p)
    assert s.ad_accounts[0].id == "111" and s.campaign.daily_budget == 1000
    assert s.schedule.default_timezone == "UTC" and s.campaign.start.tzinfo is not None


@pytest.mark.parametrize("text, key, expected", [
    ("[campaign]\ndaily_budget = -5\n", "campaign.daily_budget", "greater than 0"),
    ("[campaign]\ndaily_budget = 10\nlifetime_budget = 20\n", "campaign", "not both"),
    ("[campaign]\nname = \"{pagename}\"\n", "campaign.name", "{page_name}"),
    ("[campaign]\nstart = 2026-03-02\nend = 2026-03-01\n", "campaign", "end must be after start"),
    ("[[ad_accounts]]\nid = \"x1\"\ncurrency = \"USD\"\nbusiness_country = \"US\"\n", "ad_accounts[0].id",
     "digits"),
    ("[[ad_accounts]]\nid = \"1\"\ncurrency = \"dollars\"\nbusiness_country = \"US\"\n",
     "ad_accounts[0].currency", "ISO 4217"),
    ("[[ad_accounts]]\nid = \"1\"\ncurrency = \"USD\"\nbusiness_country = \"ZZ\"\n",
     "ad_accounts[0].business_country", "ISO 3166"),
    ("[[ad_accounts]]\nid = \"1\"\ncurrency = \"USD\"\n", "ad_accounts[0].business_country", "missing"),
    ("[schedule]\nwindow = \"9-5\"\n", "schedule.window", "HH:MM-HH:MM"),
    ("[schedule]\nwindow = \"10:00-10:00\"\n", "schedule.window", "empty"),
    ("[schedule]\ndefault_timezone = \"Mars/Base\"\n", "schedule.default_timezone", "IANA"),
    ("[schedule]\nbatch_size = 0\n", "schedule.batch_size", "greater than 0"),
    ("[[content]]\ntopic = \"Deals\"\n", "content[0]", "message = {...} or exclude = true"),
    ("[[content]]\ntopic = \"D\"\nexclude = true\nmessage = {text = \"x\"}\n", "content[0]", "cannot be combined"),
    ("[pages.\"P1\"]\nad_account = \"act_x\"\n", "pages.P1.ad_account", "digits"),
    ("bogus = 1\n", "bogus", "unknown key"),
    ("[cost]\nsource = \"guess\"\n", "cost.source", "'spec' or 'estimate'"),
])
def test_errors_name_file_key_and_expectation(tmp_path, text, key, expected):
    msg = err(tmp_path, text)
    line = next((ln for ln in msg.splitlines() if f": {key}: " in ln), None)
    assert line is not None, msg
    assert line.startswith(f"{tmp_path / 'bad.toml'}: ") and expected in line, line


def test_toml_syntax_error_and_missing_file(tmp_path):
    assert "not valid TOML" in err(tmp_path, "[campaign\n")
    with pytest.raises(PlanError, match="no such plan spec"):
        load_spec(tmp_path / "nope.toml")


def test_duplicate_ad_account(tmp_path):
    acct = "[[ad_accounts]]\nid = \"1\"\ncurrency = \"USD\"\nbusiness_country = \"US\"\n"
    assert "listed twice" in err(tmp_path, acct + acct.replace("\"1\"", "\"act_1\""))


def test_canonical_json_ignores_layout(tmp_path):
    a = spec_from_dict({"campaign": {"daily_budget": 5, "per": "page"}})
    b = spec_from_dict({"campaign": {"per": "page", "daily_budget": 5}})
    assert a.canonical_json() == b.canonical_json()
    assert a.canonical_json() != spec_from_dict({"campaign": {"daily_budget": 6}}).canonical_json()


def test_schema_is_json_schema_with_descriptions():
    s = spec_schema()
    json.dumps(s)
    assert s["type"] == "object" and "ad_accounts" in s["properties"]
    assert "minor" in json.dumps(s)


@given(st.integers(0, 23), st.integers(0, 59), st.integers(0, 23), st.integers(0, 59))
def test_parse_window_roundtrip(h1, m1, h2, m2):
    text = f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"
    if (h1, m1) == (h2, m2):
        with pytest.raises(ValueError):
            parse_window(text)
    else:
        assert parse_window(text) == (h1 * 60 + m1, h2 * 60 + m2)

"""The emulator reads the rules in one place: an override reaches its checks, cadence and regions."""

from __future__ import annotations

import pytest

from _emu import ACT, PAGE, client_for, make
from migrator.emulator import EmulatorConfig, Subscriber
from migrator.emulator.checks import EmulatorRules
from migrator.graph import RecipientNever
from migrator.rules import load_rules


def _send_to_norway(rules):
    app, _, _ = make(EmulatorConfig(warmup_seconds=0, rules=rules),
                     subscribers=[Subscriber(token="tok-no", page_id=PAGE, region="NO", psid="psid-no")])
    with client_for(app) as g:
        cid = g.create_campaign(ACT, name="c", page_id=PAGE, daily_budget=1000)["id"]
        return g.send_message(ACT, message_id=cid, subscription_token="tok-no", message={"text": "Hi"})


def test_excluded_regions_follow_the_rules_eu_definition(tmp_path):
    assert _send_to_norway(None).tracking_id                  # EU27 (packaged): Norway is not in it
    eea = tmp_path / "rules.toml"
    eea.write_text('eu_definition = "EEA"\n')
    with pytest.raises(RecipientNever) as err:                 # EEA: Norway is excluded
        _send_to_norway(load_rules(eea))
    assert err.value.code == 2300032 or err.value.subcode == 2300032


def test_one_view_of_the_rules_serves_checks_cadence_and_regions(tmp_path):
    f = tmp_path / "rules.toml"
    f.write_text('mm_cadence_hours = 24\neu_definition = "EEA"\nmm_text_max_chars = 20\n')
    config = EmulatorConfig(rules=load_rules(f))
    view = config.rules_view()
    assert view == EmulatorRules.from_rules(load_rules(f)) and view.text_max == 20
    assert config.cadence_seconds == view.cadence_hours * 3600 == 86400
    assert config.excluded_regions == view.excluded_regions and "NO" in view.excluded_regions
    assert EmulatorConfig().rules_view() == EmulatorRules.packaged()
    given = EmulatorConfig(rules=load_rules(f), cadence_seconds=5, excluded_regions=frozenset({"XX"}))
    assert (given.cadence_seconds, given.excluded_regions) == (5, frozenset({"XX"}))   # given wins

"""The emulator remembers across a crash: campaigns, sends, cadence, unique tracking ids, webhooks."""

from __future__ import annotations

import json

from _emu import ACT, PAGE, client_for, make
from migrator.emulator import EmulatorConfig

TEXT = {"text": "New stock is in."}


def _send(g, cid, token):
    return g.send_message(ACT, message_id=cid, subscription_token=token, message=TEXT)


def test_a_killed_emulator_restarted_on_its_state_keeps_everything(tmp_path):
    state, hooks = tmp_path / "emu.sqlite", tmp_path / "hooks.jsonl"
    app, emu, clock = make(EmulatorConfig(warmup_seconds=0, state_path=state, webhooks_path=hooks))
    with client_for(app) as g:
        cid = g.create_campaign(ACT, name="Spring", page_id=PAGE)["id"]
        first = [_send(g, cid, t).tracking_id for t in ("tok-us-1", "tok-us-2")]
    # killed: no close(), no snapshot, webhook lines still in the writer's buffer
    assert hooks.read_text() == ""
    app2, emu2, clock2 = make(EmulatorConfig(warmup_seconds=0, state_path=state, webhooks_path=hooks))
    clock2.set(clock())
    assert cid in emu2.state.campaigns and len(emu2.state.sends) == 2
    assert [s.token for s in emu2.state.sends] == ["tok-us-1", "tok-us-2"]
    with client_for(app2) as g:
        assert g.find_campaign(ACT, "Spring")["id"] == cid          # the executor finds it again
        again = _send(g, cid, "tok-us-3").tracking_id
        try:
            _send(g, cid, "tok-us-1")
            raise AssertionError("the 12 h cadence was forgotten")
        except Exception as exc:                                     # noqa: BLE001
            assert "2300035" in str(exc) or getattr(exc, "code", None) == 2300035
        other = g.create_campaign(ACT, name="Autumn", page_id=PAGE)["id"]
    assert len({*first, again}) == 3                                 # tracking ids never repeat
    assert other != cid
    # the lines the killed process never wrote are written at the restart, once each
    emu2.webhooks.flush()
    echoes = [json.loads(x)["entry"][0]["changes"][0]["value"]["messenger_subscription_token"]
              for x in hooks.read_text().splitlines()
              if json.loads(x)["entry"][0]["changes"][0]["field"] == "marketing_message_echoes"]
    assert sorted(echoes) == ["tok-us-1", "tok-us-2", "tok-us-3"]


def test_in_memory_state_and_reset(tmp_path):
    app, emu, clock = make()
    assert not emu.state.store.durable
    with client_for(app) as g:
        cid = g.create_campaign(ACT, name="x", page_id=PAGE)["id"]
        _send(g, cid, "tok-us-1")
    assert len(emu.state.sends) == 1 and emu.state.sends[0].token == "tok-us-1"
    assert emu.state.sends[-1:][0].message == TEXT
    emu.state.reset()
    assert emu.state.sends == [] and not emu.state.campaigns and "tok-us-1" not in emu.state.last_sent


def test_budget_days_in_the_account_time_zone_survive_a_restart(tmp_path):
    """Spend is charged to the ad account's own day; a restart must not move it to the UTC day."""
    state = tmp_path / "emu.sqlite"
    cfg = dict(warmup_seconds=0, state_path=state, account_timezones={ACT: "Asia/Manila"}, cost_per_message=10)
    app, emu, clock = make(EmulatorConfig(**cfg))
    clock.set(1_772_496_000 + 20 * 3600)           # 20:00 UTC = 04:00 the next day in Manila
    with client_for(app) as g:
        cid = g.create_campaign(ACT, name="B", page_id=PAGE, daily_budget=10)["id"]
        _send(g, cid, "tok-us-1")
    before = dict(emu.state.campaigns[cid].spent_by_day)
    app2, emu2, clock2 = make(EmulatorConfig(**cfg))
    assert emu2.state.campaigns[cid].spent_by_day == before and emu2.state.campaigns[cid].spent == 10

"""Issue 16.5: every limit comes from the rules. One override file (`--rules`) changes a limit
and each consumer follows it: converter, planner, executor, emulator; `rules show` lists them."""

from __future__ import annotations

import json

from migrator.rules import load_rules
from migrator.plan import write_plan
from _exec import Emu
from _plan import estate, plan, spec_file, tok

OVERRIDE = """
mm_text_max_chars = 20
mm_cadence_hours = 24
mm_start_max_days_ahead = 1
mm_min_daily_budget = { USD = 5000 }
"""


def _rules_file(tmp_path):
    f = tmp_path / "rules.toml"
    f.write_text(OVERRIDE)
    return f


def test_converter_follows_the_override(cli, tmp_path):
    msg = tmp_path / "m.json"
    msg.write_text(json.dumps({"text": "x" * 21}))
    assert json.loads(cli("convert", "--json", msg).output)["results"][0]["outcome"] == "exact"
    out = json.loads(cli("convert", "--json", "--rules", _rules_file(tmp_path), msg).output)
    assert out["results"][0]["outcome"] == "needs_edit"
    assert "MM allows 20" in out["results"][0]["problems"][0]["detail"]


def test_planner_follows_the_override(cli, ws, tmp_path):
    estate(ws, tmp_path / "in", [tok(i) for i in range(3)])
    spec = spec_file(tmp_path / "spec", "")   # campaign.start 2026-03-02, as of 2026-03-01
    rules = _rules_file(tmp_path)
    ok = cli("plan", spec, "--as-of", "2026-03-01", "-o", tmp_path / "p.json", "--json")
    assert ok.exit_code == 0, ok.output
    warned = json.loads(ok.output)["warnings"]
    assert not any("minimum daily budget" in w for w in warned)
    r = cli("plan", spec, "--as-of", "2026-02-27", "--rules", rules, "-o", tmp_path / "p2.json", "--json")
    assert r.exit_code == 1 and "at most 1 days ahead" in r.output
    r = cli("plan", spec, "--as-of", "2026-03-01", "--rules", rules, "-o", tmp_path / "p3.json", "--json")
    assert r.exit_code == 0, r.output
    assert any("minimum daily budget of USD 50.00" in w for w in json.loads(r.output)["warnings"])   # 5000 minor units


def test_executor_and_emulator_follow_the_override(ws, tmp_path):
    rules_path = _rules_file(tmp_path)
    estate(ws, tmp_path / "in", [tok(i) for i in range(3)])
    p = plan(ws, tmp_path / "spec", "", rules_path=str(rules_path))
    write_plan(p, tmp_path / "plan.json")
    assert p.rules_path == str(rules_path)
    emu = Emu(ws, rules=load_rules(rules_path))
    emu.emulator.state.last_sent["TOKEN000000SECRET"] = emu.clock() - 13 * 3600   # 13 h ago: 24 h cadence
    s = emu.run(ws, p, wait=False)
    assert s.sent == 2 and s.rescheduled == 1
    nb = ws.conn.execute("SELECT not_before, reason FROM exec_sends JOIN tokens t ON t.id = token_id "
                         "WHERE t.token = 'TOKEN000000SECRET'").fetchone()
    assert nb[1] == "recipient_later:2300035" and nb[0] >= emu.clock() + 23 * 3600


def test_rules_show_lists_every_limit_with_a_source_and_its_users(cli):
    out = json.loads(cli("rules", "show", "--json").output)["rules"]
    for name in ("mm_text_max_chars", "mm_buttons_max", "mm_buttons_per_message_max", "mm_button_types",
                 "mm_button_title_max_chars", "mm_card_title_max_chars", "mm_card_subtitle_max_chars",
                 "mm_cards_max", "mm_images_max", "mm_quick_replies_max", "mm_quick_reply_title_max_chars",
                 "mm_payload_max_chars", "mm_line_breaks_max", "mm_cadence_hours", "mm_min_daily_budget",
                 "mm_lifetime_budget_min_days", "mm_start_max_days_ahead", "mm_daily_budget_overspend_percent",
                 "mm_daily_budget_weekly_multiple", "mm_warmup_min_minutes", "warmup_wait_limit_hours"):
        e = out[name]
        assert e["sources"] and all(s.startswith("https://") for s in e["sources"]), name
        assert e["used_by"], name
    for name, e in out.items():   # nothing dead: used somewhere, or recorded on purpose
        assert e["used_by"] or (e["note"] or "").startswith(("Recorded", "Superseded")), name
    assert "rn_text_max_chars" not in out and "text_classified_error_codes" not in out
    assert not any("hcv7jop6ns6r" in s for e in out.values() for s in e["sources"])
    text = cli("rules", "show").output
    assert "used by: converter, emulator" in text

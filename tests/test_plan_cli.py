"""`migrator plan` through the CLI: --schema, --json contract, the summary, -o, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrator.plan import load_plan, plan_staleness
from migrator.store import open_workspace

from _plan import estate, spec_file, tok

JSON_KEYS = {"plan_id", "fingerprint", "campaigns", "messages", "sends", "batches", "estimated_cost",
             "budget", "unreachable_by_budget", "excluded"}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def audited(ws, tmp_path):
    estate(ws, tmp_path, [tok(i) for i in range(6)] + [tok(9, country="DE")])
    return spec_file(tmp_path, "[pages.\"P1\"]\nlifetime_budget = 9\n")   # 4 messages at 2


def test_schema(cli):
    r = cli("plan", "--schema")
    assert r.exit_code == 0
    s = json.loads(r.output)
    assert {"ad_accounts", "campaign", "content", "schedule", "cost", "allow_unbounded"} <= set(s["properties"])


def test_json_contract(cli, audited, tmp_path):
    out = tmp_path / "plan.json"
    r = cli("plan", audited, "--as-of", "2026-03-01", "-o", out, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert JSON_KEYS <= set(d)
    assert (d["campaigns"], d["messages"], d["sends"], d["batches"]) == (1, 1, 4, 1)
    assert d["estimated_cost"] == {"USD": 8} and d["budget"] == {"USD": 9}
    assert d["unreachable_by_budget"] == 2
    assert d["money"]["estimated_cost"] == [{"minor": 8, "currency": "USD", "text": "USD 0.08", "basis": "estimated"}]
    assert d["excluded"] == {"over_budget": 2, "stay_on_rn": 1}
    assert load_plan(out).plan_id == d["plan_id"]


def test_text_summary(cli, audited, tmp_path):
    r = cli("plan", audited, "--as-of", "2026-03-01", "-o", tmp_path / "p.json")
    assert r.exit_code == 0, r.output
    for text in ("MM campaigns to create:", "+ c1", "4 sends in 1 batch", "USD 0.08 estimated vs budget USD 0.09",
                 "2 subscribers the budget cannot reach", "over_budget", "stay_on_rn",
                 f"migrator execute {tmp_path / 'p.json'}"):
        assert text in r.output, (text, r.output)
    assert "SECRET" not in r.output and "PSID" not in r.output


def test_errors_exit_1_without_traceback(cli, audited, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[campaign]\ndaily_budget = 0\n")
    r = cli("plan", bad)
    assert r.exit_code == 1
    assert f"error: {bad}: campaign.daily_budget: Input should be greater than 0" in r.output
    assert "Traceback" not in r.output
    r = cli("plan", tmp_path / "missing.toml")
    assert r.exit_code == 1 and "no such plan spec" in r.output


def test_no_spec_is_a_usage_error(cli):
    r = cli("plan")
    assert r.exit_code == 2 and "--schema" in r.output


def test_help_has_an_example(cli):
    r = cli("plan", "--help")
    assert r.exit_code == 0 and "migrator plan plans/sample.toml -o plan.json" in r.output


def test_sample_estate_plans_with_the_worked_spec(cli, tmp_path, db_path):
    """plans/sample.toml succeeds on `migrator sample` (default seed) after ingest + audit."""
    d = tmp_path / "sample"
    assert cli("sample", "-o", d).exit_code == 0
    assert cli("ingest", "pages", d / "pages.csv").exit_code == 0
    assert cli("ingest", "tokens", d / "tokens.csv", d / "tokens_listing.jsonl",
               d / "webhooks.jsonl").exit_code == 0
    assert cli("ingest", "content", d / "content_library.json", d / "content_sends.jsonl").exit_code == 0
    assert cli("audit", "--as-of", "2026-11-23").exit_code == 0
    out = tmp_path / "plan.json"
    r = cli("plan", REPO / "plans" / "sample.toml", "--as-of", "2026-11-23", "-o", out, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["sends"] > 0 and s["campaigns"] >= 5 and s["unreachable_by_budget"] == 0
    with open_workspace(db_path) as ws:
        assert plan_staleness(ws, load_plan(out)) == []
    text = out.read_text()
    for line in (d / "tokens.csv").read_text().splitlines()[1:50]:
        assert line.split(",")[1] not in text          # no raw subscription token in the plan


def test_estimate_without_a_token_falls_back_to_the_spec(cli, ws, tmp_path, monkeypatch):
    monkeypatch.delenv("MIGRATOR_ACCESS_TOKEN", raising=False)
    estate(ws, tmp_path, [tok(1)])
    spec = spec_file(tmp_path, "[cost]\nsource = \"estimate\"\n")
    r = cli("plan", spec, "--as-of", "2026-03-01")
    assert r.exit_code == 0, r.output
    assert "MIGRATOR_ACCESS_TOKEN is not set: using the spec's costs" in r.output
    assert "1 send x USD 0.02 = USD 0.02 estimated" in r.output


def test_rules_override_can_drop_the_budget_requirement(cli, ws, tmp_path):
    from _plan import BASE_SPEC
    estate(ws, tmp_path, [tok(1)])
    spec = spec_file(tmp_path, base=BASE_SPEC.replace("daily_budget = 1000\n", ""))
    r = cli("plan", spec, "--as-of", "2026-03-01", "--json")
    assert r.exit_code == 1 and "has no budget" in r.output
    rules = tmp_path / "rules.toml"
    rules.write_text("[plan_budget_required]\nvalue = false\n")
    r = cli("plan", spec, "--as-of", "2026-03-01", "--rules", rules, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["sends"] == 1 and d["budget"] == {"USD": None}
    with open_workspace(tmp_path / "ws.db") as w:
        rows = list(w.db.query("SELECT token_hash, campaign_key, message_key, not_before_utc FROM v_plan_sends"))
    assert rows == [{"token_hash": rows[0]["token_hash"], "campaign_key": "c1", "message_key": "m1",
                     "not_before_utc": "2026-03-02 14:00:00"}]
    assert "SECRET" not in rows[0]["token_hash"]


@pytest.mark.parametrize("schedule", ["start = 9999-12-31T23:59:59Z", "warmup_minutes = 9223372036854775807"])
def test_a_first_send_after_2100_is_an_error_not_a_traceback(cli, ws, tmp_path, schedule):
    """A typo in [schedule] overflowed date arithmetic (OverflowError: date value out of range)
    or a SQLite integer (Python int too large) with a traceback."""
    estate(ws, tmp_path, [tok(i) for i in range(3)])
    from _plan import BASE_SPEC
    key = schedule.split(" =")[0]
    base = "\n".join(ln for ln in BASE_SPEC.splitlines() if not ln.startswith(key))
    spec = spec_file(tmp_path, base=base.replace("[schedule]", f"[schedule]\n{schedule}"))
    r = cli("plan", spec, "--as-of", "2026-03-01", "-o", tmp_path / "p.json")
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and not isinstance(r.exception, OverflowError)
    assert "after 2100-01-01" in r.output
    assert not (tmp_path / "p.json").exists()

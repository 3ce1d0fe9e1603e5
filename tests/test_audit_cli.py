"""`migrator audit` through the CLI: the JSON contract, the summary, usage errors."""

from __future__ import annotations

import json

from migrator.store import open_workspace


def _estate(db_path):
    ws = open_workspace(db_path)
    ws.db["pages"].insert_all([
        {"page_id": "P1", "business_country": "US", "ad_account_id": "1"},
        {"page_id": "P2", "business_country": "FR", "ad_account_id": "2"},
    ])
    ws.db["tokens"].insert_all([
        {"token": t, "token_hash": t, "page_id": p, "psid": t, "timezone": tz, "status": st}
        for t, p, tz, st in [
            ("a", "P1", "America/New_York", "active"), ("b", "P1", "Europe/Madrid", "active"),
            ("c", "P1", "UTC", "active"), ("d", "P1", "America/Chicago", "stopped"),
            ("e", "P2", "America/New_York", "active")]])
    ws.db["contents"].insert({"content_hash": "h", "page_id": "P1", "source": "library",
                              "message": "{}", "outcome": "lossy"})
    ws.close()


def test_audit_json_has_exactly_the_contract_keys(cli, db_path):
    _estate(db_path)
    out = cli("audit", "--as-of", "2026-03-01", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    for key in ("as_of", "rules_version", "tokens", "recipients", "verdicts", "findings", "pages",
                "contents"):
        assert key in data
    assert data["as_of"] == "2026-03-01" and data["tokens"] == 5 and data["recipients"] == 5
    assert data["verdicts"] == {"migrate": 1, "stay_on_rn": 1, "blocked": 1, "opted_out": 1,
                                "review": 1}
    assert set(data["pages"]) == {"ready", "needs_action", "blocked"}
    assert {"exact", "lossy", "needs_edit", "unsupported"} <= set(data["contents"])
    assert data["contents"]["lossy"] == 1
    assert data["findings"]["OPTED_OUT"] == 1 and data["findings"]["REGION_UNKNOWN"] == 1
    assert all(isinstance(v, int) for v in data["findings"].values())


def test_audit_text_summary(cli, db_path):
    _estate(db_path)
    out = cli("audit", "--as-of", "2026-01-15")
    assert out.exit_code == 0
    text = out.output
    assert "Audit as of 2026-01-15" in text and "5 tokens" in text
    for word in ("migrate", "stay on RN", "blocked", "opted out", "review"):
        assert word in text
    assert "on 2026-02-10: 26 day(s) left" in text and "inferred from time zones" in text
    assert "Pages:" in text and "Content:" in text and "Findings:" in text


def test_bad_as_of_is_a_usage_error(cli):
    out = cli("audit", "--as-of", "15/01/2026")
    assert out.exit_code == 2
    assert "YYYY-MM-DD" in out.output and "Traceback" not in out.output


def test_audit_with_rules_override(cli, db_path, tmp_path):
    _estate(db_path)
    f = tmp_path / "r.toml"
    f.write_text('rn_exemption_basis = "either"\nversion = "acme-2"\n')
    data = json.loads(cli("audit", "--as-of", "2026-03-01", "--rules", f, "--json").output)
    assert data["rules_version"] == "acme-2"
    assert data["options"]["rn_exemption_basis"] == "either"


def test_audit_with_malformed_rules_exits_1_naming_the_entry(cli, db_path, tmp_path):
    f = tmp_path / "r.toml"
    f.write_text("[rn_discontinuation]\nvalue = 12\n")
    out = cli("audit", "--rules", f)
    assert out.exit_code == 1
    assert "rn_discontinuation.value" in out.output and "Traceback" not in out.output


def test_audit_help_has_an_example(cli):
    out = cli("audit", "--help")
    assert "migrator audit --as-of" in out.output


def test_audit_without_a_workspace_says_so(cli, db_path):
    out = cli("audit")
    assert out.exit_code == 1
    assert "no workspace" in out.output and "Traceback" not in out.output
    assert not db_path.exists()

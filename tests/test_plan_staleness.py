"""Fingerprints change on every kind of input change; plan_staleness says what changed."""

from __future__ import annotations

from datetime import date

import pytest

from migrator.audit import run_audit
from migrator.errors import StalePlanError
from migrator.plan import check_fresh, load_plan, make_plan, plan_staleness, write_plan
from migrator.plan.fingerprint import input_fingerprints, workspace_fingerprints
from migrator.rules import load_rules

from _plan import AS_OF, estate, ingest, lib, plan, spec_file, tok
from _sqlite import tables_read


@pytest.fixture
def made(ws, tmp_path):
    estate(ws, tmp_path, [tok(i) for i in range(4)])
    p = plan(ws, tmp_path)
    out = write_plan(p, tmp_path / "plan.json")
    return ws, tmp_path, load_plan(out)


def test_fresh_plan(made):
    ws, tmp, p = made
    assert plan_staleness(ws, p) == []
    check_fresh(ws, p)


def test_identical_reaudit_keeps_the_plan_fresh(made):
    ws, tmp, p = made
    run_audit(ws, as_of=AS_OF)
    assert plan_staleness(ws, p) == []


def test_reingesting_the_same_file_keeps_the_plan_fresh(made):
    ws, tmp, p = made
    ingest(ws, tmp / "again", tokens=[tok(i) for i in range(4)], name="x")
    assert plan_staleness(ws, p) == []


def test_inventory_change(made):
    ws, tmp, p = made
    ingest(ws, tmp, tokens=[tok(9)], name="more")
    assert plan_staleness(ws, p) == [
        "the inventory changed (tokens or pages were ingested, pulled or updated since the plan)"]
    with pytest.raises(StalePlanError, match="stale: the inventory changed"):
        check_fresh(ws, p)


@pytest.mark.parametrize("change", [{"tz": "Asia/Tokyo"}, {"nea": "1800000000"}, {"country": "BR"},
                                    {"topic": "Other"}, {"psid": "PSIDOTHER"}])
def test_any_planning_column_of_a_token_counts(made, change):
    """Every write to `tokens` is an ingest run that accepted something: a snapshot that changes one
    planning column of one token moves the fingerprint, through the public ingest path."""
    ws, tmp, p = made
    before = workspace_fingerprints(ws)["inventory"]
    ingest(ws, tmp / "same", tokens=[tok(i) for i in range(4)], name="same")
    assert workspace_fingerprints(ws)["inventory"] == before       # the same values: nothing accepted
    ingest(ws, tmp / "changed", tokens=[tok(0), tok(1, **change), tok(2), tok(3)], name="changed")
    assert workspace_fingerprints(ws)["inventory"] != before


def test_a_fingerprint_does_not_scan_the_tokens(made):
    """The staleness check runs at every `execute` start and every `status`: it must not read the
    token table (a 20-76 s scan at 10M tokens). SQLite's authorizer sees every table a statement reads."""
    ws, tmp, p = made
    _, read = tables_read(ws.conn, lambda: plan_staleness(ws, p))
    assert "tokens" not in read and "audit_tokens" not in read, sorted(read)


def test_a_token_status_alone_is_left_to_the_claim(made):
    """Opt-outs arrive all through a cutover and must be ingested to be honoured; the executor
    re-checks each token's status when it claims a send, so a status change alone keeps the plan
    fresh (a CSV snapshot that changes statuses is still an ingest run, and still counts)."""
    ws, tmp, p = made
    before = workspace_fingerprints(ws)["inventory"]
    ws.conn.execute("UPDATE tokens SET status = 'stopped', status_at = 1800000000000 WHERE id = 2")
    assert workspace_fingerprints(ws)["inventory"] == before


@pytest.mark.parametrize("kind", ["receipts", "mm_receipts"])
def test_receipts_runs_leave_the_plan_fresh(made, kind):
    """Receipts settle the executor's ledger and touch no inventory table: an interrupted run
    is settled by `ingest receipts` and then resumes, so they must not make its plan stale.
    Receipts runs are recorded as kind 'receipts' (older workspaces: 'mm_receipts')."""
    ws, tmp, p = made
    before = workspace_fingerprints(ws)
    ws.conn.execute("INSERT INTO ingest_runs (kind, path, format, started_at, finished_at, records,"
                    " accepted) VALUES (?, 'hooks.jsonl', 'webhooks', 1, 2, 5, 5)", (kind,))
    assert workspace_fingerprints(ws) == before
    assert plan_staleness(ws, p) == []


def test_pages_change(made):
    ws, tmp, p = made
    ingest(ws, tmp, pages=[["P1", "Shop One", "US", "222", "USD"]], name="pages2")
    assert any("inventory" in s for s in plan_staleness(ws, p))


def test_audit_change(made):
    ws, tmp, p = made
    ws.conn.execute("UPDATE tokens SET country = 'DE' WHERE id = 1")   # inventory too
    run_audit(ws, as_of=AS_OF)
    changes = plan_staleness(ws, p)
    assert any(s.startswith("the audit results changed") for s in changes)


def test_audit_as_of_change_alone(made):
    ws, tmp, p = made
    run_audit(ws, as_of=date(2026, 3, 5))
    assert plan_staleness(ws, p) == [
        "the audit results changed (a new audit decided differently, or with another as-of date or rules)"]


def test_content_change(made):
    ws, tmp, p = made
    ingest(ws, tmp, content=[lib("P1", "more", "Deals", {"text": "More deals!"})], name="c2")
    assert plan_staleness(ws, p) == ["the RN content or its conversion changed"]


def test_spec_change_and_missing_spec(made):
    ws, tmp, p = made
    spec = tmp / "spec.toml"
    spec.write_text(spec.read_text() + "\n# a comment changes nothing\n")
    assert plan_staleness(ws, p) == []
    spec.write_text(spec.read_text().replace("daily_budget = 1000", "daily_budget = 1200"))
    assert plan_staleness(ws, p) == [f"the spec {spec} changed"]
    spec.unlink()
    # issue 15.11: the workspace keeps the spec's text; a plan whose file is gone is judged
    # against what it was made from (the plan stored before the edit above: unchanged)
    assert plan_staleness(ws, p) == []
    ws.conn.execute("UPDATE plans SET spec_text = NULL")  # a plan made before the text was kept
    assert plan_staleness(ws, p)[0].startswith(f"the spec {spec} can no longer be read")


def test_rules_change(made, tmp_path):
    ws, tmp, p = made
    override = tmp / "rules.toml"
    override.write_text("[mm_cadence_hours]\nvalue = 24\n")
    rules = load_rules(override)
    assert plan_staleness(ws, p, rules=rules) == [
        f"the rules changed (plan made with rules {p.rules_version}, now {rules.version})"]


def test_every_component_moves_the_fingerprint(ws, tmp_path):
    estate(ws, tmp_path, [tok(1)])
    from migrator.plan import load_spec
    spec = load_spec(spec_file(tmp_path))
    rules = load_rules()
    base = input_fingerprints(ws, spec, rules)
    a = plan(ws, tmp_path)
    assert a.inputs == base
    override = tmp_path / "r.toml"
    override.write_text("[mm_cadence_hours]\nvalue = 24\n")
    assert input_fingerprints(ws, spec, load_rules(override))["rules"] != base["rules"]
    spec2 = load_spec(spec_file(tmp_path, "batch_size = 5\n", name="s2.toml"))
    assert input_fingerprints(ws, spec2, rules)["spec"] != base["spec"]
    b = make_plan(ws, tmp_path / "s2.toml", as_of=AS_OF)
    assert b.fingerprint != a.fingerprint
    c = plan(ws, tmp_path, as_of=date(2026, 3, 2))
    assert c.fingerprint != a.fingerprint and c.inputs == a.inputs     # as-of is part of the plan


def test_workspace_copy_and_tampering(made):
    ws, tmp, p = made
    ws.conn.execute("UPDATE plan_sends SET not_before = not_before + 1 WHERE send_id = 1")
    assert plan_staleness(ws, p) == [f"the workspace's rows of plan {p.plan_id} were changed"]
    ws.conn.execute("DELETE FROM plans")
    assert plan_staleness(ws, p)[0].startswith(f"this workspace does not hold plan {p.plan_id}")


@pytest.mark.parametrize("edit", ["drop_window", "widen_window", "drop_end"])
def test_a_plan_file_edited_where_the_fingerprint_does_not_reach_is_refused(made, edit):
    """The executor holds sends to the plan file's `window` and campaign ends; with the two window
    keys deleted (read as "an older plan") every send went at once, outside its recipient's window."""
    import json

    ws, tmp, p = made
    data = json.loads((tmp / "plan.json").read_text())
    if edit == "drop_window":
        data.pop("window"), data.pop("default_timezone")
    elif edit == "widen_window":
        data["window"] = "00:00-23:59"
    else:
        data["campaigns"][0]["end_time"] = None if data["campaigns"][0]["end_time"] else 1
    (tmp / "edited.json").write_text(json.dumps(data))
    edited = load_plan(tmp / "edited.json")
    assert plan_staleness(ws, edited) == [f"the workspace's copy of plan {p.plan_id} differs from the plan file"]
    with pytest.raises(StalePlanError):
        check_fresh(ws, edited)


@pytest.mark.parametrize("write", [
    "UPDATE plan_sends SET batch = batch WHERE send_id = 1",                          # same values: still fresh
    "UPDATE plan_sends SET token_id = token_id + 1000 WHERE send_id = 2",
    "DELETE FROM plan_sends WHERE send_id = 3",
    "INSERT INTO plan_sends SELECT plan_id, 99, token_id, campaign_key, message_key, batch, not_before "
    "FROM plan_sends WHERE send_id = 1",
])
def test_the_sealed_digest_still_sees_every_write_to_the_plans_rows(made, write):
    """The rows' digest is taken once, when the plan is made (plan_sends_seal); a write to the rows
    afterwards, of any kind, makes the check hash them again, so a changed row is still stale."""
    ws, tmp, p = made
    ws.conn.execute(write)
    want = [] if "batch = batch" in write else [f"the workspace's rows of plan {p.plan_id} were changed"]
    assert plan_staleness(ws, p) == want


def test_the_staleness_check_does_not_hash_the_plans_rows(made):
    """At 4.9M sends the rows' digest took 4 s at every `status` and `execute` start."""
    ws, tmp, p = made
    stale, read = tables_read(ws.conn, lambda: plan_staleness(ws, p))
    assert stale == []
    assert "plan_sends" not in read, sorted(read)


def test_plans_made_before_the_seal_are_sealed_by_the_migration(made, db_path):
    from migrator.store import open_workspace
    from migrator.store.schema import MIGRATIONS

    ws, tmp, p = made
    ws.conn.execute("UPDATE plan_sends SET not_before = not_before + 1 WHERE send_id = 1")   # changed before
    ws.conn.executescript("""
        DROP TRIGGER plan_sends_seal_insert; DROP TRIGGER plan_sends_seal_update;
        DROP TRIGGER plan_sends_seal_delete; DROP TABLE plan_sends_seal;""")
    ws.conn.execute(f"DELETE FROM [{MIGRATIONS.migrations_table}] WHERE name = '0611_plan_sends_seal'")
    again = open_workspace(db_path)
    try:
        assert plan_staleness(again, p) == [f"the workspace's rows of plan {p.plan_id} were changed"]
        again.conn.execute("UPDATE plan_sends SET not_before = not_before - 1 WHERE send_id = 1")
        assert plan_staleness(again, p) == []
    finally:
        again.close()


def _seal_triggers(conn):
    return conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'plan_sends_seal%'"
                        " ORDER BY name").fetchall()


def test_planning_leaves_the_seal_triggers_as_they_were(ws, tmp_path):
    """The planner drops the insert trigger while it writes its own rows (issue 19.5): it is back,
    the same text, after a plan, and after a failure inside the plan's transaction."""
    from migrator.plan.build import _insert_seal_trigger_off

    estate(ws, tmp_path, [tok(i) for i in range(4)])
    before = _seal_triggers(ws.conn)
    assert [name for name, _ in before] == ["plan_sends_seal_delete", "plan_sends_seal_insert",
                                            "plan_sends_seal_update"]
    plan(ws, tmp_path)
    assert _seal_triggers(ws.conn) == before
    with pytest.raises(RuntimeError):
        with ws.transaction() as conn, _insert_seal_trigger_off(conn):
            assert len(_seal_triggers(conn)) == 2
            raise RuntimeError("stop")
    assert _seal_triggers(ws.conn) == before

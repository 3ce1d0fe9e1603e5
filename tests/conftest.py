"""Shared fixtures: a fresh workspace file per test, and a CLI runner bound to it.

Also the test profile (tests/_hyp.py): Hypothesis' settings per profile, and tests marked
`slow` skipped unless MIGRATOR_TEST_PROFILE=ci.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import settings

from _hyp import PROFILE, THOROUGH

from migrator.cli import main
from migrator.store import open_workspace

# the default number of examples for tests that do not ask for one; no deadline anywhere
# (the machine is shared: a slow example is not a failure)
settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile(PROFILE)


def pytest_collection_modifyitems(config, items):
    if THOROUGH:
        return
    skip = pytest.mark.skip(reason="slow: runs in CI (MIGRATOR_TEST_PROFILE=ci)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    return f"test profile: {PROFILE} (MIGRATOR_TEST_PROFILE; ci runs the slow tests too)"


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "ws.db"


@pytest.fixture
def ws(db_path):
    w = open_workspace(db_path)
    yield w
    w.close()


@pytest.fixture
def cli(db_path, monkeypatch):
    """Run `migrator --db <tmp> ...`; returns the click Result."""
    monkeypatch.delenv("MIGRATOR_DB", raising=False)
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(main, ["--db", str(db_path), *map(str, args)], input=input,
                             catch_exceptions=False)

    return run


# Small test timestamps (1, 2000, ...) are read as milliseconds after this base: ingest
# refuses times before 2004 (issue 15.5), and only their order matters to these tests.
TS_BASE_MS = 1_700_000_000_000


def webhook(page_id, psid, token, ts, status=None, **optin):
    """One Page webhook delivery carrying one RN opt-in (or stop/resume) event."""
    if type(ts) is int and 0 <= ts < 10**9:
        ts = TS_BASE_MS + ts
    body = {"type": "notification_messages", "notification_messages_token": token,
            "title": "Deals", "notification_messages_timezone": "America/Sao_Paulo",
            "token_expiry_timestamp": 2145916800000, "user_token_status": "NOT_REFRESHED"}
    body.update(optin)
    if status:
        body["notification_messages_status"] = status
    return {"object": "page", "entry": [{"id": page_id, "time": ts, "messaging": [
        {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": ts, "optin": body}]}]}


def write_jsonl(path, objs):
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path

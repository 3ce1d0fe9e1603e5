"""The demo's workspace as report tests read it: built once per module, copied per test."""

from __future__ import annotations

import shutil

import pytest

from migrator.demo import run_demo
from migrator.report import build_readiness_report
from migrator.store import open_workspace

CLOCK = lambda: 1_796_000_000   # noqa: E731  2026-12-01: after RN's discontinuation, as the demo runs today


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    run_demo(out, clock=CLOCK)
    return out / "migration.db"


@pytest.fixture
def ws(demo, tmp_path):
    db = tmp_path / "copy.db"
    shutil.copy(demo, db)
    w = open_workspace(db)
    yield w
    w.close()


def readiness_pages(ws):
    """page_id -> the readiness report's page, as of CLOCK."""
    return {p.page_id: p for p in build_readiness_report(ws, clock=CLOCK).pages}

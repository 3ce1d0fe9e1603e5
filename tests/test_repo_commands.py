"""The README's commands are the ones CI runs, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in first_block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command_verbatim():
    test_line = next(c for c in _readme_commands() if c.endswith(".venv/bin/pytest"))
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_line in ci


def test_ci_selects_the_thorough_profile_before_the_tests():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    test_line = next(c for c in _readme_commands() if c.endswith(".venv/bin/pytest"))
    assert "export MIGRATOR_TEST_PROFILE=ci" in ci
    assert ci.index("export MIGRATOR_TEST_PROFILE=ci") < ci.index(test_line)


def test_tests_import_their_helpers_as_the_readme_command_can():
    """`tests.x` imports work under `python -m pytest` only (the working directory on sys.path);
    the helpers are importable as `_plan`, `_exec`, `conftest`, ... under both runners."""
    offenders = [p.name for p in (ROOT / "tests").glob("*.py")
                 if re.search(r"^\s*(from tests[. ]|import tests\b)", p.read_text(), re.M)]
    assert offenders == []

"""Test profiles: `dev` (default, quick local runs) and `ci` (thorough; `.ci/run` sets it).

`MIGRATOR_TEST_PROFILE=ci` selects the thorough one. It decides how many examples each
Hypothesis test tries (`examples(n)`: n in CI, a fifth of n locally) and whether tests marked
`@pytest.mark.slow` run (CI only; conftest skips them otherwise).
"""

from __future__ import annotations

import os

PROFILE = os.environ.get("MIGRATOR_TEST_PROFILE", "dev").strip().lower() or "dev"
if PROFILE not in ("dev", "ci"):
    raise SystemExit(f"MIGRATOR_TEST_PROFILE={PROFILE!r}: expected dev or ci")
THOROUGH = PROFILE == "ci"


def examples(n: int) -> int:
    """How many examples a property test that asks for `n` tries under this profile."""
    return n if THOROUGH else max(5, n // 5)

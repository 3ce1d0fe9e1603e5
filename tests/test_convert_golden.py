"""Golden-file tests: every RN shape and button type, from Meta's documented example payloads.

tests/golden/convert/<case>.in.json is the RN input (a Send API body, library entry or bare
message; runnable as `migrator convert <file>`), <case>.policy.json an optional ConvertPolicy,
<case>.out.json the expected ConversionResult. Regenerate after a deliberate rule change with
`UPDATE_GOLDEN=1 pytest tests/test_convert_golden.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from migrator.convert import ConvertPolicy, convert_message, validate_mm_message

GOLDEN = Path(__file__).parent / "golden" / "convert"
CASES = sorted(p.name[: -len(".in.json")] for p in GOLDEN.glob("*.in.json"))


def _run(case: str) -> dict:
    obj = json.loads((GOLDEN / f"{case}.in.json").read_text())
    pol = GOLDEN / f"{case}.policy.json"
    policy = ConvertPolicy(**json.loads(pol.read_text())) if pol.exists() else None
    return convert_message(obj, policy).model_dump(mode="json")


@pytest.mark.parametrize("case", CASES)
def test_golden(case):
    got = _run(case)
    out = GOLDEN / f"{case}.out.json"
    if os.environ.get("UPDATE_GOLDEN"):
        out.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert got == json.loads(out.read_text())
    if got["outcome"] in ("exact", "lossy"):
        assert validate_mm_message(got["message"]) == []


def test_every_outcome_and_button_type_is_covered():
    outcomes = {json.loads((GOLDEN / f"{c}.out.json").read_text())["outcome"] for c in CASES}
    assert outcomes == {"exact", "lossy", "needs_edit", "unsupported"}
    text = "".join((GOLDEN / f"{c}.in.json").read_text() for c in CASES)
    for t in ("web_url", "postback", "phone_number", "account_link", "account_unlink", "game_play"):
        assert f'"type": "{t}"' in text, t
    for t in ("image", "video", "audio", "file"):
        assert f'"type": "{t}"' in text, t

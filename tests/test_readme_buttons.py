"""The README's button table says what the converter does: each row is run through the converter
(default rules and policy, `refuse`, and rules that allow postback/app) and its codes and outcome
must be the ones the row names. The table had gone stale (postback "kept, exact" while the default
rules drop it)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from migrator.convert import ConvertPolicy, convert_message
from migrator.convert.limits import default_limits

README = Path(__file__).resolve().parents[1] / "README.md"

W = {"type": "web_url", "url": "https://example.com/p", "title": "Open"}
P = {"type": "postback", "title": "More", "payload": "MORE"}
A = {"type": "app", "title": "App", "ios_url": "shop://home"}
PHONE = {"type": "phone_number", "title": "Call", "payload": "+15105551234"}
REFUSE = ConvertPolicy(unsupported_buttons="refuse")
ALLOW = dataclasses.replace(default_limits(), button_types=("web_url", "postback", "app"))


def card(buttons, **extra):
    return {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
        {"title": "Hat", "subtitle": "Warm", "image_url": "https://example.com/hat.png", "buttons": buttons,
         **extra}]}}}


def video_card(buttons):
    return {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
        {"title": "Hat", "subtitle": "Warm", "media_type": "video", "video_id": "123", "buttons": buttons}]}}}


def button_template(buttons):
    return {"attachment": {"type": "template", "payload": {"template_type": "button", "text": "Pick",
                                                           "buttons": buttons}}}


# (the row's first cell starts with, input, policy, limits, outcome, codes the converter gives)
ROWS = [
    ("`web_url`", card([W]), None, None, "exact", set()),
    ("a type in capitals", card([{**W, "type": "WEB_URL"}]), None, None, "exact", {"BUTTON_TYPE_LOWERCASED"}),
    ("`postback`, `app` (MM deep link)", card([P]), None, None, "lossy",
     {"CONTESTED_BUTTON_DROPPED", "EMPTY_BUTTONS_REMOVED"}),
    ("`postback`, `app` (MM deep link)", card([A]), REFUSE, None, "needs_edit", {"BUTTON_TYPE_UNSUPPORTED"}),
    ("`postback`, `app` when the rules", card([P]), None, ALLOW, "exact", {"RELIES_ON_CONTESTED_BUTTON_TYPE"}),
    ("`postback`, `app` when the rules", card([A]), None, ALLOW, "exact", {"RELIES_ON_CONTESTED_BUTTON_TYPE"}),
    ("`phone_number`", card([W, PHONE]), None, None, "lossy", {"BUTTON_DROPPED"}),
    ("`phone_number`", card([PHONE]), REFUSE, None, "needs_edit", {"BUTTON_TYPE_UNSUPPORTED"}),
    ("every button of a card", card([PHONE]), None, None, "lossy", {"BUTTON_DROPPED", "EMPTY_BUTTONS_REMOVED"}),
    ("every button of a button template", button_template([PHONE]), None, None, "lossy",
     {"BUTTON_DROPPED", "BUTTON_TEMPLATE_TO_TEXT"}),
    ("every button of a button template", button_template([P]), None, None, "lossy",
     {"CONTESTED_BUTTON_DROPPED", "BUTTON_TEMPLATE_TO_TEXT"}),
    ('`"buttons": []` on a card', card([]), None, None, "exact", {"EMPTY_LIST_REMOVED"}),
    ('`"buttons": []` on a button template', button_template([]), None, None, "needs_edit",
     {"REQUIRED_FIELD_MISSING"}),
    ("title empty", card([{**W, "title": ""}]), None, None, "needs_edit", {"BUTTON_TITLE_EMPTY"}),
    ("title empty", card([{**W, "title": "x" * 21}]), None, None, "needs_edit", {"BUTTON_TITLE_TOO_LONG"}),
    ("title empty", card([{**W, "url": ""}]), None, None, "needs_edit", {"BUTTON_URL_EMPTY"}),
    ("title empty", card([{**W, "url": "not a url"}]), None, None, "needs_edit", {"INVALID_URL"}),
    ("title empty", card([{**P, "payload": "x" * 1001}]), None, ALLOW, "needs_edit",
     {"PAYLOAD_TOO_LONG", "RELIES_ON_CONTESTED_BUTTON_TYPE"}),
    ("more than 3", card([W] * 4), None, None, "needs_edit", {"TOO_MANY_BUTTONS"}),
    ("more than 3", {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
        card([W, W])["attachment"]["payload"]["elements"][0]] * 2}}}, None, None, "needs_edit", {"TOO_MANY_BUTTONS"}),
    ("a kept non-`web_url` button on a video card", video_card([P]), None, ALLOW, "needs_edit",
     {"BUTTON_TYPE_UNSUPPORTED", "RELIES_ON_CONTESTED_BUTTON_TYPE"}),
]


def _button_rows() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Buttons\n"):text.index("## Rules and the audit")]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith(("| Send API", "|---")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = line
    return rows


@pytest.mark.parametrize("start, message, policy, limits, outcome, codes", ROWS,
                         ids=[f"{r[0][:30]}-{i}" for i, r in enumerate(ROWS)])
def test_each_button_row_is_what_the_converter_does(start, message, policy, limits, outcome, codes):
    r = convert_message(message, policy, limits=limits)
    got = {c.code for c in r.changes} | {p.code for p in r.problems}
    assert (r.outcome, got) == (outcome, codes)
    row = next((line for first, line in _button_rows().items() if first.startswith(start)), None)
    assert row is not None, f"no README button row starting {start!r}"
    # a row names its own codes; codes another row explains (the drop of an emptied list, the
    # contested type a kept postback relies on) are that row's
    other = {"EMPTY_BUTTONS_REMOVED", "RELIES_ON_CONTESTED_BUTTON_TYPE", "BUTTON_DROPPED",
             "CONTESTED_BUTTON_DROPPED"} if not start.startswith(("`postback`", "`phone_number`")) else \
        {"EMPTY_BUTTONS_REMOVED"}
    for code in codes - other:
        assert f"`{code}`" in row, (code, row)
    if other & codes and start.startswith("every button"):
        assert "the drop's lossy code" in row
    assert outcome in row or outcome.replace("_", " ") in row, (outcome, row)


def test_every_code_the_button_rows_name_is_a_converter_code():
    from migrator.convert import CHANGE_CODES, PROBLEM_CODES

    for line in _button_rows().values():
        for code in set(re.findall(r"`([A-Z][A-Z_]+)`", line)) - {"WEB_URL"}:
            assert code in CHANGE_CODES or code in PROBLEM_CODES, code

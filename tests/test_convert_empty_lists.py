"""Empty lists in RN content (`buttons: []`, `quick_replies: []`) were copied into an `exact` MM
message. Meta documents 1-3 buttons and up to 13 quick replies, never an empty list: the converter
leaves them out with a note (the message a person sees is the same), and a button template with
no button is needs_edit (it needs 1 to 3)."""

from __future__ import annotations

import json

from hypothesis import given

from migrator.convert import CHANGE_CODES, convert_message
from test_convert_properties import FAST, bodies

CARD = {"title": "Hat", "subtitle": "Warm", "image_url": "https://example.com/hat.png"}


def _template(payload):
    return {"attachment": {"type": "template", "payload": payload}}


def _empty_lists(value, path="message"):
    if isinstance(value, list):
        if not value:
            yield path
        for i, v in enumerate(value):
            yield from _empty_lists(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _empty_lists(v, f"{path}.{k}")


def test_empty_lists_are_left_out_with_a_note_through_the_cli(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from migrator.cli import main

    monkeypatch.chdir(tmp_path)
    f = tmp_path / "content.jsonl"
    f.write_text("".join(json.dumps(m) + "\n" for m in [
        {"recipient": {"notification_messages_token": "t"}, "message": {"text": "Sale", "quick_replies": []}},
        _template({"template_type": "generic", "elements": [{**CARD, "buttons": []}]}),
        _template({"template_type": "media", "elements": [{"media_type": "image", "attachment_id": "42",
                                                           "buttons": []}]}),
        _template({"template_type": "button", "text": "Pick one", "buttons": []}),
    ]))
    r = CliRunner().invoke(main, ["convert", "--json", str(f)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["results"]
    assert [x["outcome"] for x in res] == ["exact", "exact", "exact", "needs_edit"]
    assert res[0]["message"] == {"text": "Sale"}
    assert res[1]["message"] == _template({"template_type": "generic", "elements": [CARD]})
    assert res[2]["message"] == _template({"template_type": "media", "elements": [
        {"media_type": "image", "attachment_id": "42"}]})
    notes = [[(c["code"], c["detail"]) for c in x["changes"]] for x in res[:3]]
    assert notes == [
        [("EMPTY_LIST_REMOVED", "message.quick_replies was an empty list and is left out")],
        [("EMPTY_LIST_REMOVED", "message.attachment.payload.elements[0].buttons was an empty list and is left out")],
        [("EMPTY_LIST_REMOVED", "message.attachment.payload.elements[0].buttons was an empty list and is left out")]]
    assert res[3]["message"] is None and res[3]["problems"][0]["code"] == "REQUIRED_FIELD_MISSING"
    assert CHANGE_CODES["EMPTY_LIST_REMOVED"][0] == "info"     # not a loss: nothing was shown


@FAST
@given(bodies)
def test_no_sendable_message_carries_an_empty_list(body):
    r = convert_message(body)
    if r.outcome in ("exact", "lossy"):
        assert list(_empty_lists(r.message)) == [], r.message

"""validate_mm_message: each documented MM constraint gives its stable code and MM error code."""

from __future__ import annotations

import pytest

import dataclasses

from migrator.convert import MM_ERROR_CODES, PROBLEM_CODES, validate_mm_message
from migrator.convert.limits import default_limits

# The newer pages' reading of the button types (postback, app); the packaged default is web_url.
LIBERAL = dataclasses.replace(default_limits(), button_types=("web_url", "postback", "app"))


def tpl(payload):
    return {"attachment": {"type": "template", "payload": payload}}


def card(**kw):
    base = {"title": "Hat", "subtitle": "Nice", "image_url": "https://example.com/h.jpg"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


WEB = {"type": "web_url", "url": "https://example.com", "title": "Open"}
PB = {"type": "postback", "title": "More", "payload": "MORE"}

VALID = [
    {"text": "hello"},
    {"text": "x" * 640},
    {"text": "pick", "quick_replies": [{"content_type": "text", "title": "A", "payload": "A"},
                                       {"content_type": "user_email"}]},
    tpl({"template_type": "generic", "text": "Hi {{first_name}}", "elements": [card(title="Hi {{full_name}}")]}),
    tpl({"template_type": "generic", "elements": [card(media_type="video", video_id="123", image_url=None,
                                                       buttons=[WEB])]}),
    tpl({"template_type": "generic", "elements": [card(image_url=None, image_urls=[
        {"url": "https://e.com/1.jpg", "is_hero_image": "true"}, {"url": "https://e.com/2.jpg"}])]}),
    tpl({"template_type": "button", "text": "Go", "buttons": [WEB, PB,
                                                               {"type": "app", "title": "App", "ios_url": "x://y"}]}),
    tpl({"template_type": "media", "elements": [{"media_type": "image", "attachment_id": "42"}]}),
    tpl({"template_type": "media", "elements": [{"media_type": "video", "url": "https://m.facebook.com/v/1"}]}),
    tpl({"template_type": "product", "elements": [{"id": "1"}]}),
    tpl({"template_type": "coupon", "title": "10% off", "coupon_code": "SAVE10",
         "coupon_url": "https://example.com/c", "coupon_pre_message": "Hi {{first_name}}"}),
]


@pytest.mark.parametrize("message", VALID)
def test_valid_messages_have_no_problems(message):
    assert validate_mm_message(message, limits=LIBERAL) == []


INVALID = [
    ("2300010 not an object", [], "NOT_A_MESSAGE", 2300010),
    ("text and attachment", {"text": "a", "attachment": {}}, "NOT_A_MESSAGE", 2300010),
    ("unknown top-level field", {"text": "a", "metadata": "m"}, "UNKNOWN_FIELD", 2300010),
    ("plain image attachment", {"attachment": {"type": "image", "payload": {"attachment_id": "1"}}},
     "ATTACHMENT_TYPE_UNSUPPORTED", 2300010),
    ("unknown template", tpl({"template_type": "image_grid"}), "TEMPLATE_UNSUPPORTED", 2300010),
    ("empty text", {"text": ""}, "REQUIRED_FIELD_MISSING", 2300076),
    ("text 641", {"text": "x" * 641}, "TEXT_TOO_LONG", None),
    ("line breaks", {"text": "a\n" * 21}, "TOO_MANY_LINE_BREAKS", 2300073),
    ("macro in text", {"text": "Hi {{first_name}}"}, "PLACEHOLDER_NOT_ALLOWED", None),
    ("macro in button", tpl({"template_type": "button", "text": "a",
                             "buttons": [dict(WEB, title="{{first_name}}")]}), "PLACEHOLDER_NOT_ALLOWED", None),
    ("unknown macro", tpl({"template_type": "generic", "elements": [card(title="{{nick}}")]}), "UNKNOWN_MACRO", 2300038),
    ("video without id", tpl({"template_type": "generic", "elements": [card(media_type="video")]}),
     "VIDEO_ID_MISSING", 2300021),
    ("image without url", tpl({"template_type": "generic", "elements": [card(media_type="image", image_url=None)]}),
     "IMAGE_URL_MISSING", 2300022),
    ("phone button", tpl({"template_type": "button", "text": "a",
                          "buttons": [{"type": "phone_number", "title": "Call", "payload": "+1"}]}),
     "BUTTON_TYPE_UNSUPPORTED", 2300023),
    ("postback on video", tpl({"template_type": "generic", "elements": [
        card(media_type="video", video_id="1", buttons=[PB])]}), "BUTTON_TYPE_UNSUPPORTED", 2300023),
    ("empty url", tpl({"template_type": "button", "text": "a", "buttons": [dict(WEB, url="")]}),
     "BUTTON_URL_EMPTY", 2300024),
    ("empty title", tpl({"template_type": "button", "text": "a", "buttons": [dict(WEB, title="")]}),
     "BUTTON_TITLE_EMPTY", 2300025),
    ("four buttons", tpl({"template_type": "button", "text": "a", "buttons": [WEB, WEB, PB, PB]}),
     "TOO_MANY_BUTTONS", 2300026),
    ("multi-image in carousel", tpl({"template_type": "generic", "elements": [
        card(image_url=None, image_urls=[{"url": "https://e.com/1.jpg"}]), card()]}),
     "MULTI_IMAGE_IN_CAROUSEL", 2300046),
    ("image_url and image_urls", tpl({"template_type": "generic", "elements": [
        card(image_urls=[{"url": "https://e.com/1.jpg"}])]}), "IMAGE_URL_AND_IMAGE_URLS", 2300047),
    ("two heroes", tpl({"template_type": "generic", "elements": [card(image_url=None, image_urls=[
        {"url": "https://e.com/1.jpg", "is_hero_image": "true"},
        {"url": "https://e.com/2.jpg", "is_hero_image": True}])]}), "TOO_MANY_HERO_IMAGES", 2300048),
    ("bad url", tpl({"template_type": "generic", "elements": [card(image_url="javascript:alert(1)")]}),
     "INVALID_URL", 2300077),
    ("non-facebook media", tpl({"template_type": "media", "elements": [
        {"media_type": "image", "url": "https://facebook.com.evil.example/x.jpg"}]}), "MEDIA_URL_NOT_FACEBOOK", 2300077),
    ("11 cards", tpl({"template_type": "generic", "elements": [card()] * 11}), "TOO_MANY_ELEMENTS", None),
    ("title 81", tpl({"template_type": "generic", "elements": [card(title="x" * 81)]}), "TITLE_TOO_LONG", None),
    ("subtitle 81", tpl({"template_type": "generic", "elements": [card(subtitle="x" * 81)]}), "SUBTITLE_TOO_LONG", None),
    ("card without title", tpl({"template_type": "generic", "elements": [card(title=None)]}),
     "REQUIRED_FIELD_MISSING", 2300076),
    ("button template without buttons", tpl({"template_type": "button", "text": "a", "buttons": []}),
     "REQUIRED_FIELD_MISSING", 2300076),
    ("button title 21", tpl({"template_type": "button", "text": "a", "buttons": [dict(WEB, title="x" * 21)]}),
     "BUTTON_TITLE_TOO_LONG", None),
    ("payload 1001", tpl({"template_type": "button", "text": "a", "buttons": [dict(PB, payload="x" * 1001)]}),
     "PAYLOAD_TOO_LONG", None),
    ("14 quick replies", {"text": "a", "quick_replies": [{"content_type": "user_email"}] * 14},
     "TOO_MANY_QUICK_REPLIES", None),
    ("location quick reply", {"text": "a", "quick_replies": [{"content_type": "location"}]},
     "QUICK_REPLY_UNSUPPORTED", None),
    ("quick reply title 21", {"text": "a", "quick_replies": [
        {"content_type": "text", "title": "x" * 21, "payload": "p"}]}, "QUICK_REPLY_TITLE_TOO_LONG", None),
    ("media with two elements", tpl({"template_type": "media", "elements": [
        {"media_type": "image", "attachment_id": "1"}] * 2}), "TOO_MANY_ELEMENTS", None),
    ("media with id and url", tpl({"template_type": "media", "elements": [
        {"media_type": "image", "attachment_id": "1", "url": "https://facebook.com/p"}]}), "INVALID_FIELD", 2300010),
]


@pytest.mark.parametrize("name,message,code,mm_code", INVALID, ids=[c[0] for c in INVALID])
def test_each_constraint_reports_its_code(name, message, code, mm_code):
    problems = validate_mm_message(message, limits=LIBERAL)
    match = [p for p in problems if p.code == code]
    assert match, problems
    assert match[0].mm_error_code == mm_code
    assert match[0].detail  # a human sentence naming the field


def test_codes_are_registered_and_brief_codes_are_covered():
    assert set(MM_ERROR_CODES) <= set(PROBLEM_CODES)
    used = {c for c in MM_ERROR_CODES.values() if c}
    for code in (2300010, 2300021, 2300022, 2300023, 2300024, 2300025, 2300026, 2300046, 2300047,
                 2300048, 2300073, 2300077):
        assert code in used


def test_line_break_limit_is_a_parameter():
    assert validate_mm_message({"text": "a\n" * 5}, max_line_breaks=4)[0].code == "TOO_MANY_LINE_BREAKS"
    assert validate_mm_message({"text": "a\n" * 5}, max_line_breaks=5) == []


@pytest.mark.parametrize("message", VALID)
def test_valid_mm_messages_convert_unchanged(message):
    """MM-native content (video cards, image grids, app buttons, coupons ...) passes through as is."""
    from migrator.convert import convert_message

    r = convert_message(message, limits=LIBERAL)
    assert (r.outcome, r.message, r.problems) == ("exact", message, [])
    assert {c.code for c in r.changes} <= {"RELIES_ON_CONTESTED_BUTTON_TYPE"}


# --- issue 16.8 / 16.9: converter fixes ------------------------------------------------------

def _conv(message, **kw):
    from migrator.convert import convert_message
    return convert_message(message, **kw)


def test_a_card_without_an_image_is_not_exact():
    r = _conv(tpl({"template_type": "generic", "elements": [{"title": "Hat", "subtitle": "Nice"}]}))
    assert r.outcome == "needs_edit"
    p = next(p for p in r.problems if p.code == "IMAGE_URL_MISSING")
    assert p.mm_error_code == 2300022 and "defaults to image" in p.detail


def test_a_card_needs_a_field_besides_the_title():
    problems = validate_mm_message(tpl({"template_type": "generic", "elements": [
        {"title": "Hat", "media_type": "video", "video_id": ""}]}))
    assert "REQUIRED_FIELD_MISSING" in {p.code for p in problems}


def test_button_types_are_a_rule_with_the_contested_reading_named():
    msg = tpl({"template_type": "button", "text": "Go", "buttons": [WEB, PB]})
    default = _conv(msg)
    assert default.outcome == "lossy"
    assert [c.code for c in default.changes] == ["CONTESTED_BUTTON_DROPPED"]
    assert default.message["attachment"]["payload"]["buttons"] == [WEB]
    liberal = _conv(msg, limits=LIBERAL)
    assert liberal.outcome == "exact"
    assert [c.code for c in liberal.changes] == ["RELIES_ON_CONTESTED_BUTTON_TYPE"]


def test_three_buttons_per_message_not_only_per_card():
    two = card(buttons=[WEB, WEB])
    problems = validate_mm_message(tpl({"template_type": "generic", "elements": [two, two]}))
    assert [p.mm_error_code for p in problems if p.code == "TOO_MANY_BUTTONS"] == [2300026]
    assert validate_mm_message(tpl({"template_type": "generic", "elements": [two, card()]})) == []


def test_lengths_count_utf16_units_when_larger():
    assert validate_mm_message({"text": "x" * 640}) == []
    emoji = "\U0001F600" * 640                  # 640 code points, 1280 UTF-16 units
    assert [p.code for p in validate_mm_message({"text": emoji})] == ["TEXT_TOO_LONG"]
    assert validate_mm_message({"text": "\U0001F600" * 320}) == []


def test_a_lone_surrogate_is_needs_edit_not_a_crash():
    import json
    r = _conv(json.loads('{"text": "Sale \\ud83d today"}'))
    assert r.outcome == "needs_edit" and [p.code for p in r.problems] == ["LONE_SURROGATE"]


def test_unicode_line_separators_count_as_line_breaks():
    assert [p.code for p in validate_mm_message({"text": "a\u2028" * 21})] == ["TOO_MANY_LINE_BREAKS"]
    assert [p.code for p in validate_mm_message({"text": "a\u2029" * 21})] == ["TOO_MANY_LINE_BREAKS"]


def test_null_image_url_and_emptied_buttons_are_not_copied():
    phone = {"type": "phone_number", "title": "Call", "payload": "+15550100"}
    r = _conv(tpl({"template_type": "generic", "elements": [
        {"title": "Hat", "subtitle": "Nice", "image_url": None, "media_type": "video", "video_id": "9",
         "buttons": [phone]}]}))
    el = r.message["attachment"]["payload"]["elements"][0]
    assert "image_url" not in el and "buttons" not in el
    assert {"NULL_FIELD_REMOVED", "EMPTY_BUTTONS_REMOVED", "BUTTON_DROPPED"} <= {c.code for c in r.changes}


def test_capitalised_button_type_is_lowercased_not_dropped():
    r = _conv(tpl({"template_type": "button", "text": "Go", "buttons": [dict(WEB, type="WEB_URL")]}))
    assert r.outcome == "exact" and r.message["attachment"]["payload"]["buttons"] == [WEB]
    assert [c.code for c in r.changes] == ["BUTTON_TYPE_LOWERCASED"]


def test_a_tagged_send_gets_a_utility_template_finding():
    body = {"recipient": {"notification_messages_token": "t"}, "messaging_type": "MESSAGE_TAG",
            "tag": "ACCOUNT_UPDATE", "message": {"text": "Your order shipped"}}
    r = _conv(body)
    assert r.outcome == "lossy"
    c = next(c for c in r.changes if c.code == "MESSAGE_TAG_SEND")
    assert "ACCOUNT_UPDATE" in c.detail and "Utility" in c.detail

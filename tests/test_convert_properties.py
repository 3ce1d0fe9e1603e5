"""Property tests for the converter: never raises, output always valid, idempotent."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.convert import (
    CHANGE_CODES, PROBLEM_CODES, ConvertPolicy, convert_message, validate_mm_message,
)
from _hyp import examples

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
any_json = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
    max_leaves=30,
)

# Plausible RN content: real field names and types, values that hit every limit.
words = st.sampled_from(["Hi", "{first_name}", "%LAST_NAME%", "{{user.full_name}}", "{{coupon}}",
                         "Sale", "\n", "[first name]", "{{first_name}}", "x" * 30, "🎉", ""])
texts = st.lists(words, max_size=30).map(" ".join) | st.text(max_size=700)
urls = st.sampled_from(["https://example.com/p", "https://www.facebook.com/photo/1", "not a url",
                        "", "http://fb.com/v/2", "https://x.com/{first_name}", "ftp://a.b"])
button_types = st.sampled_from(["web_url", "postback", "phone_number", "account_link",
                                "account_unlink", "game_play", "element_share", "app", "weird"])
maybe = lambda s: st.none() | s  # noqa: E731


def _drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


buttons = st.builds(
    lambda t, title, url, payload, ratio: _drop_none(
        {"type": t, "title": title, "url": url, "payload": payload, "webview_height_ratio": ratio}),
    button_types, maybe(texts), maybe(urls), maybe(st.text(max_size=1100)),
    maybe(st.sampled_from(["compact", "tall", "full", "huge"])))
elements = st.builds(
    lambda title, sub, img, da, bs, extra: _drop_none(
        {"title": title, "subtitle": sub, "image_url": img, "default_action": da, "buttons": bs,
         "item_url": extra}),
    maybe(texts), maybe(texts), maybe(urls),
    maybe(st.builds(lambda t, u, title: _drop_none({"type": t, "url": u, "title": title}),
                    st.sampled_from(["web_url", "postback"]), maybe(urls), maybe(texts))),
    maybe(st.lists(buttons, max_size=4)), maybe(urls))
# MM-native features (the converter passes them through; idempotence must hold for them too)
mm_cards = st.builds(
    lambda title, mt, vid, imgs, bs: _drop_none({"title": title, "media_type": mt, "video_id": vid,
                                                 "image_urls": imgs, "buttons": bs}),
    st.sampled_from(["Hat", "Hi {{first_name}}", "Sale {first_name}", ""]) | texts,
    maybe(st.sampled_from(["image", "video"])), maybe(st.sampled_from(["123", ""])),
    maybe(st.lists(st.builds(lambda u, h: _drop_none({"url": u, "is_hero_image": h}),
                             st.sampled_from(["https://e.com/1.jpg", "https://e.com/2.png"]) | urls,
                             maybe(st.sampled_from(["true", True, "false"]))), min_size=1, max_size=7)),
    maybe(st.lists(st.sampled_from([{"type": "web_url", "url": "https://e.com", "title": "Open"},
                                    {"type": "app", "title": "App", "ios_url": "x://y"},
                                    {"type": "postback", "title": "More", "payload": "M"}]) | buttons,
                   max_size=3)))
templates = st.one_of(
    st.builds(lambda greeting, els: _drop_none({"template_type": "generic", "text": greeting, "elements": els}),
              maybe(texts), st.lists(mm_cards, min_size=1, max_size=3)),
    st.builds(lambda els, ratio: _drop_none({"template_type": "generic", "elements": els,
                                             "image_aspect_ratio": ratio}),
              st.lists(elements, max_size=12), maybe(st.sampled_from(["horizontal", "square", "wide"]))),
    st.builds(lambda text, bs: _drop_none({"template_type": "button", "text": text, "buttons": bs}),
              maybe(texts), maybe(st.lists(buttons, max_size=4))),
    st.builds(lambda mt, aid, url, bs: {"template_type": "media", "elements": [_drop_none(
        {"media_type": mt, "attachment_id": aid, "url": url, "buttons": bs})]},
        st.sampled_from(["image", "video", "gif"]), maybe(st.text(max_size=5)), maybe(urls),
        maybe(st.lists(buttons, max_size=4))),
    st.builds(lambda tt: {"template_type": tt}, st.sampled_from(["receipt", "product", "notification_messages"])),
)
attachments = st.one_of(
    st.builds(lambda p: {"type": "template", "payload": p}, templates),
    st.builds(lambda t, aid, url: {"type": t, "payload": _drop_none({"attachment_id": aid, "url": url,
                                                                     "is_reusable": True})},
              st.sampled_from(["image", "video", "audio", "file"]), maybe(st.text(max_size=5)), maybe(urls)),
)
quick_replies = st.lists(st.builds(
    lambda ct, title, payload: _drop_none({"content_type": ct, "title": title, "payload": payload}),
    st.sampled_from(["text", "user_email", "user_phone_number", "location"]), maybe(texts),
    maybe(st.text(max_size=30))), max_size=15)
messages = st.builds(
    lambda body, qrs, meta: _drop_none({**body, "quick_replies": qrs, "metadata": meta}),
    st.one_of(st.builds(lambda t: {"text": t}, texts), st.builds(lambda a: {"attachment": a}, attachments)),
    maybe(quick_replies), maybe(st.text(max_size=10)))
bodies = messages | st.builds(lambda m: {"recipient": {"notification_messages_token": "tok"}, "message": m},
                              messages)
policies = st.builds(
    lambda b, media: ConvertPolicy(unsupported_buttons=b, non_facebook_media_url=media,
                                   generic_image_title="New in" if media == "to_generic" else None),
    st.sampled_from(["drop", "refuse"]), st.sampled_from(["needs_edit", "to_generic"]))

# CONVERT_EXAMPLES=5000 pytest tests/test_convert_properties.py for a longer bug hunt.
FAST = settings(max_examples=int(os.environ.get("CONVERT_EXAMPLES", examples(300))), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(result, policy=None):
    assert not any(p.code == "CONVERTER_ERROR" for p in result.problems), result.problems
    json.dumps(result.model_dump())  # storable and printable
    if result.outcome in ("exact", "lossy"):
        assert result.message is not None
        assert validate_mm_message(result.message) == []
        assert result.problems == []
        again = convert_message(result.message, policy)
        assert again.outcome == "exact", again
        assert again.message == result.message
        assert again.changes == [] and again.problems == []
    elif result.outcome == "needs_edit":
        assert result.problems and result.message is None and result.draft is not None
    else:
        assert result.message is None and result.draft is None and result.problems


@pytest.mark.slow
@FAST
@given(any_json)
def test_never_raises_on_arbitrary_json(obj):
    _check(convert_message(obj))


@FAST
@given(any_json)
def test_validator_never_raises(obj):
    problems = validate_mm_message(obj)
    assert isinstance(problems, list)
    validate_mm_message({"text": "x", "quick_replies": obj})
    validate_mm_message({"attachment": {"type": "template", "payload": obj}})


@FAST
@given(bodies, policies)
def test_plausible_content_converts_to_valid_idempotent_mm(body, policy):
    _check(convert_message(body, policy), policy)


@FAST
@given(bodies)
def test_outcome_is_the_worst_finding(body):
    r = convert_message(body)
    kinds = {PROBLEM_CODES[p.code][0] for p in r.problems}
    lossy = any(CHANGE_CODES[c.code][0] == "lossy" for c in r.changes)
    expected = ("unsupported" if "unsupported" in kinds else "needs_edit" if kinds
                else "lossy" if lossy else "exact")
    assert r.outcome == expected


@FAST
@given(texts, maybe(quick_replies))
def test_text_is_never_truncated_or_rewritten(text, qrs):
    msg = {"text": text} if qrs is None else {"text": text, "quick_replies": qrs}
    r = convert_message(msg)
    if (r.message or r.draft) is not None:
        assert (r.message or r.draft)["text"] == text
    if len(text) > 640:
        assert r.outcome == "needs_edit"
        assert any(p.code == "TEXT_TOO_LONG" for p in r.problems)

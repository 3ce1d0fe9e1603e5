"""RN message content for the sample: every Send API shape a partner may have logged.

The catalog covers text (short, > 640 and 2000 chars), generic single card and carousels
(one with 11 elements, over the limit), button templates with web_url / postback /
phone_number buttons, media templates (Facebook URL, attachment_id, a non-Facebook URL),
image/video/audio/file attachments, quick replies, metadata and {{first_name}}
placeholders (Meta's Send API:
https://developers.facebook.com/docs/messenger-platform/reference/send-api). Some messages name the page,
so they differ per page.
"""

from __future__ import annotations

import json
from typing import Any

# words for long texts: deterministic filler that reads like a newsletter
_WORDS = ("this week we picked the best offers for you across the store including new "
          "arrivals limited editions and everyday essentials with free delivery on orders "
          "over fifty and easy returns for thirty days").split()


def _long_text(n: int, lead: str) -> str:
    out = lead
    i = 0
    while len(out) < n:
        out += " " + _WORDS[i % len(_WORDS)]
        i += 1
    text = out[:n - 1].rstrip()
    return text + "." * (n - len(text))  # exactly n characters


def _btn_url(title: str, url: str, **extra) -> dict:
    return {"type": "web_url", "url": url, "title": title, **extra}


def _btn_postback(title: str, payload: str) -> dict:
    return {"type": "postback", "title": title, "payload": payload}


def _btn_phone(title: str, number: str) -> dict:
    return {"type": "phone_number", "title": title, "payload": number}


def _template(payload: dict) -> dict:
    return {"attachment": {"type": "template", "payload": payload}}


def _card(i: int, shop: str, *, buttons: int = 1) -> dict:
    el: dict[str, Any] = {
        "title": f"Pick #{i + 1} for {{{{first_name}}}}" if i == 0 else f"{shop} pick #{i + 1}",
        "subtitle": f"Only this week: {10 + 5 * (i % 6)}% off",
        "image_url": f"https://cdn.example.com/{shop.lower()}/items/{i + 1}.jpg",
        "default_action": {"type": "web_url", "url": f"https://shop.example.com/item/{i + 1}",
                           "webview_height_ratio": "tall"},
    }
    btns = [_btn_url("View item", f"https://shop.example.com/item/{i + 1}"),
            _btn_postback("Remind me later", f"REMIND_{i + 1}"),
            _btn_phone("Call the shop", "+14155550100")]
    el["buttons"] = btns[:buttons]
    return el


def catalog(shop: str) -> list[tuple[str, dict]]:
    """(shape, message) pairs; `shop` is the page's short name (some texts mention it)."""
    slug = shop.lower().replace(" ", "-")
    return [
        ("text_short", {"text": "Flash sale: 20% off everything today only!"}),
        ("text_placeholder", {"text": "Hi {{first_name}}, your weekly deals are here."}),
        ("text_page", {"text": f"New this week at {shop}: fresh arrivals in every aisle."}),
        ("text_over_640", {"text": _long_text(900, f"Hello {{{{first_name}}}}, the {shop} letter:")}),
        ("text_2000", {"text": _long_text(2000, "The big monthly digest:")}),
        ("text_line_breaks", {"text": "Today's picks:\n- shoes\n- bags\n- hats\n- socks\n- scarves\n\nShop now!"}),
        ("text_quick_replies", {
            "text": "Which deals do you want next week?",
            "quick_replies": [
                {"content_type": "text", "title": "Shoes", "payload": "PREF_SHOES"},
                {"content_type": "text", "title": "Bags", "payload": "PREF_BAGS",
                 "image_url": "https://cdn.example.com/icons/bag.png"},
                {"content_type": "user_email"},
                {"content_type": "user_phone_number"},
            ]}),
        ("text_13_quick_replies", {
            "text": "Pick a category",
            "quick_replies": [{"content_type": "text", "title": f"Category {i}", "payload": f"CAT_{i}"}
                              for i in range(1, 14)]}),
        ("text_metadata", {"text": "Your points balance changed. Tap to see it.",
                           "metadata": "campaign=points-2025;variant=b"}),
        ("generic_single", _template({
            "template_type": "generic",
            "elements": [_card(0, shop, buttons=2)]})),
        ("generic_square_sharable", _template({
            "template_type": "generic", "image_aspect_ratio": "square", "sharable": True,
            "elements": [{"title": "{{first_name}}, your coupon", "subtitle": "Show it at the till",
                          "image_url": f"https://cdn.example.com/{slug}/coupon.png",
                          "buttons": [_btn_url("Open coupon", "https://shop.example.com/coupon")]}]})),
        ("carousel_3", _template({
            "template_type": "generic",
            "elements": [_card(i, shop, buttons=1 + i % 3) for i in range(3)]})),
        ("carousel_11", _template({
            "template_type": "generic",
            "elements": [_card(i, shop) for i in range(11)]})),
        ("button_3_kinds", _template({
            "template_type": "button",
            "text": "Hi {{first_name}}, your order can be picked up today.",
            "buttons": [_btn_url("Track order", "https://shop.example.com/orders",
                                 webview_height_ratio="compact"),
                        _btn_postback("Change pickup", "CHANGE_PICKUP"),
                        _btn_phone("Call us", "+5511955550101")]})),
        ("button_web_url_extensions", _template({
            "template_type": "button", "text": f"The {shop} summer catalogue is out.",
            "buttons": [_btn_url("Browse", "https://shop.example.com/catalogue",
                                 webview_height_ratio="full", messenger_extensions=True,
                                 fallback_url="https://shop.example.com/catalogue?fallback=1")]})),
        ("button_phone_only", _template({
            "template_type": "button", "text": "Questions about your delivery? Call us.",
            "buttons": [_btn_phone("Call support", "+914055550102")]})),
        ("media_facebook_url", _template({
            "template_type": "media",
            "elements": [{"media_type": "image",
                          "url": f"https://www.facebook.com/{slug}/photos/a.100/2001/",
                          "buttons": [_btn_url("Shop the look", "https://shop.example.com/look")]}]})),
        ("media_attachment_id", _template({
            "template_type": "media",
            "elements": [{"media_type": "video", "attachment_id": "1857777774821032",
                          "buttons": [_btn_postback("More like this", "MORE_VIDEO")]}]})),
        ("media_external_url", _template({
            "template_type": "media",
            "elements": [{"media_type": "image", "url": "https://cdn.example.com/banners/sale.jpg"}]})),
        ("image_url", {"attachment": {"type": "image", "payload": {
            "url": f"https://cdn.example.com/{slug}/banner.jpg", "is_reusable": True}}}),
        ("image_attachment_id", {"attachment": {"type": "image", "payload": {
            "attachment_id": "1745504518999123"}}}),
        ("video", {"attachment": {"type": "video", "payload": {
            "url": "https://cdn.example.com/video/teaser.mp4", "is_reusable": True}}}),
        ("audio", {"attachment": {"type": "audio", "payload": {
            "url": "https://cdn.example.com/audio/jingle.mp3"}}}),
        ("file", {"attachment": {"type": "file", "payload": {
            "url": "https://cdn.example.com/docs/price-list.pdf"}}}),
        ("image_quick_replies", {
            "attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/poll.png"}},
            "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "POLL_YES"},
                              {"content_type": "text", "title": "No", "payload": "POLL_NO"}]}),
    ]


# sends favour a few popular messages, like a real estate (weights by catalog position)
SEND_WEIGHTS = (30, 20, 14, 4, 2, 3, 6, 2, 4, 10, 3, 8, 3, 8, 3, 2, 4, 3, 2, 6, 2, 2, 1, 2, 2)
SHAPES = tuple(name for name, _ in catalog("Shop"))


def canonical(message: Any) -> str:
    """Canonical JSON of a message (sorted keys): what makes two messages the same content."""
    return json.dumps(message, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

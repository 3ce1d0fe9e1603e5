"""Pre-flight validation of an MM `message` object against the documented constraints.

Pure and fast (no I/O, no pydantic parsing of the input). Each problem carries the MM error
code Meta documents for it (Meta's MM API reference and its error table,
https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/api-reference);
where Meta documents a limit but no code
(title 80, quick replies 13, ...) `mm_error_code` is None. Every number comes from the rules
(`ContentLimits`); the figures below are the packaged defaults. The emulator does
NOT use this validator: it has its own checks written from Meta's texts (emulator/checks.py),
so it can disagree with the converter.

Lengths count both code points and UTF-16 units and judge by the larger (Meta does not say
which it counts); a lone surrogate is a problem, not a crash; U+2028/U+2029 are line breaks.

Rules encoded (Meta's MM template pages under
https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/api-reference
unless noted):
- message: exactly one of `text` / `attachment`; optional `quick_replies`; nothing else.
- text ≤ 640 characters (Python characters, i.e. code points); line breaks ≤ the assumed limit.
- attachment: `type` = template; template_type generic | button | media | product | receipt | coupon.
- generic: 1-10 elements; title required, ≤ 80; subtitle ≤ 80; at least one field besides the
  title; media_type image (the default) | video; video needs video_id (2300021) and takes only
  web_url buttons; an image card (media_type absent or image) needs image_url (2300022); image_urls ≤ 6, at most one hero (2300048), not with image_url (2300047), not in a
  carousel (2300046); greeting `text` on the payload.
- button: text required ≤ 640; 1-3 buttons.  media: exactly one element, media_type image|video,
  attachment_id XOR a Facebook-hosted url (2300077 otherwise).
- buttons: ≤ 3 per card and ≤ 3 per message (2300026); type in the rules' mm_button_types
  (default web_url only: 2300023's text; postback/app are the contested reading); title required (2300025),
  ≤ 20; web_url needs a valid http(s) url (2300024/2300077); postback payload required, ≤ 1000.
- macros {{first_name}} {{last_name}} {{full_name}} only in card title/subtitle and greeting text.
- quick_replies ≤ 13; content_type text | user_phone_number | user_email; text ones need
  title ≤ 20 (or image_url) and payload ≤ 1000.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from migrator.convert.limits import (DOCUMENTED_BUTTON_TYPES, ContentLimits, default_limits,
                                     has_lone_surrogate, line_breaks, text_length)
from migrator.convert.model import Problem, problem
from migrator.convert.placeholders import find_macros, is_mm_macro

MM_TEMPLATES = ("generic", "button", "media", "product", "receipt", "coupon")
QUICK_REPLY_TYPES = ("text", "user_phone_number", "user_email")
WEBVIEW_RATIOS = ("compact", "tall", "full")
ASPECT_RATIOS = ("horizontal", "square")

# Hosts whose URLs count as "Facebook-hosted" for a media template (Meta's MM media template page: "a
# facebook.com photo/video URL"); subdomains included.
FACEBOOK_HOSTS = ("facebook.com", "fb.com", "fb.watch")

_MESSAGE_KEYS = {"text", "attachment", "quick_replies"}
_ELEMENT_KEYS = {"title", "subtitle", "image_url", "image_urls", "default_action", "buttons",
                 "media_type", "video_id"}
_GENERIC_KEYS = {"template_type", "elements", "text", "image_aspect_ratio", "sharable"}
_BUTTON_TPL_KEYS = {"template_type", "text", "buttons"}
_MEDIA_TPL_KEYS = {"template_type", "elements", "sharable"}
_MEDIA_EL_KEYS = {"media_type", "attachment_id", "url", "buttons"}
_WEB_URL_KEYS = {"type", "url", "title", "webview_height_ratio", "messenger_extensions",
                 "fallback_url", "webview_share_button"}
_POSTBACK_KEYS = {"type", "title", "payload"}
_APP_KEYS = {"type", "title", "android_url", "ios_url"}
_QR_KEYS = {"content_type", "title", "payload", "image_url"}


_BAD_URL_CHAR = re.compile(r"[\s\x00-\x1f\x7f]")


def is_valid_url(url: Any) -> bool:
    """An absolute http(s) URL with a host and no whitespace."""
    if not isinstance(url, str) or not url or _BAD_URL_CHAR.search(url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def is_facebook_url(url: Any) -> bool:
    if not is_valid_url(url):
        return False
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == h or host.endswith("." + h) for h in FACEBOOK_HOSTS)


class _Check:
    """Accumulates problems while walking one message."""

    def __init__(self, limits: ContentLimits, max_line_breaks: int):
        self.lim = limits
        self.max_line_breaks = max_line_breaks
        self.problems: list[Problem] = []
        self.buttons_seen = 0

    def add(self, code: str, detail: str) -> None:
        self.problems.append(problem(code, detail))

    # -- scalar helpers ---------------------------------------------------------------
    def string(self, obj: dict, key: str, path: str, *, required: bool, max_len: int | None,
               too_long: str = "INVALID_FIELD", macros: bool | None = False, empty_code: str =
               "REQUIRED_FIELD_MISSING", count_breaks: bool = False) -> str | None:
        """Check one string field; macros: True allowed, False refused, None not checked."""
        value = obj.get(key)
        where = f"{path}.{key}"
        if value is None:
            if required:
                self.add(empty_code, f"{where} is missing")
            return None
        if not isinstance(value, str):
            self.add("INVALID_FIELD", f"{where} must be a string, not {_type(value)}")
            return None
        if has_lone_surrogate(value):
            self.add("LONE_SURROGATE", f"{where} contains a lone UTF-16 surrogate (a broken emoji "
                     "or character): re-type the text")
            return value
        if required and not value.strip():
            self.add(empty_code, f"{where} is empty")
            return value
        if max_len is not None and (n := text_length(value)) > max_len:
            self.add(too_long, f"{where} is {n} characters (code points or UTF-16 units, the larger); "
                     f"MM allows {max_len}")
        if count_breaks and (n := line_breaks(value)) > self.max_line_breaks:
            self.add("TOO_MANY_LINE_BREAKS", f"{where} has {n} line breaks; more than "
                     f"{self.max_line_breaks} risks MM error 2300073 (Meta does not document the limit)")
        if macros is not None:
            self.macros(value, where, allowed=macros)
        return value

    def macros(self, text: str, where: str, *, allowed: bool) -> None:
        for expr in find_macros(text):
            if not allowed:
                self.add("PLACEHOLDER_NOT_ALLOWED", f"{where} contains {expr}; MM resolves macros only "
                         "in card titles/subtitles and greeting text")
            elif not is_mm_macro(expr):
                self.add("UNKNOWN_MACRO", f"{where} contains {expr}; MM knows only {{{{first_name}}}}, "
                         "{{last_name}} and {{full_name}}")

    def url(self, obj: dict, key: str, path: str, *, required: bool) -> None:
        value = obj.get(key)
        where = f"{path}.{key}"
        if value is None or value == "":
            if required:
                self.add("BUTTON_URL_EMPTY", f"{where} is missing")
            return
        if not is_valid_url(value):
            self.add("INVALID_URL", f"{where} is not a valid http(s) URL: {_excerpt(value)}")
        else:
            self.macros(value, where, allowed=False)

    def enum(self, obj: dict, key: str, path: str, allowed: tuple, *, lower: bool = False) -> None:
        value = obj.get(key)
        if value is None:
            return
        v = value.lower() if lower and isinstance(value, str) else value
        if v not in allowed:
            self.add("INVALID_FIELD", f"{path}.{key} is {_excerpt(value)}; expected one of {', '.join(allowed)}")

    def boolean(self, obj: dict, key: str, path: str) -> None:
        if key in obj and not isinstance(obj[key], bool):
            self.add("INVALID_FIELD", f"{path}.{key} must be true or false")

    def unknown(self, obj: dict, allowed: set, path: str) -> None:
        for k in obj:
            if k not in allowed:
                self.add("UNKNOWN_FIELD", f"{path} has field {_excerpt(k)}, which MM does not document")

    def obj(self, value: Any, path: str) -> dict | None:
        if not isinstance(value, dict):
            self.add("INVALID_FIELD", f"{path} must be an object, not {_type(value)}")
            return None
        return value

    def array(self, value: Any, path: str) -> list | None:
        if not isinstance(value, list):
            self.add("INVALID_FIELD", f"{path} must be an array, not {_type(value)}")
            return None
        return value

    # -- structures -------------------------------------------------------------------
    def message(self, m: Any) -> None:
        if not isinstance(m, dict):
            self.add("NOT_A_MESSAGE", f"message must be an object, not {_type(m)}")
            return
        self.unknown(m, _MESSAGE_KEYS, "message")
        has_text, has_att = "text" in m, "attachment" in m
        if has_text == has_att:
            self.add("NOT_A_MESSAGE", "message must have exactly one of text or attachment")
        if has_text:
            self.string(m, "text", "message", required=True, max_len=self.lim.text_max, too_long="TEXT_TOO_LONG",
                        count_breaks=True)
        if has_att:
            self.attachment(m["attachment"], "message.attachment")
        if "quick_replies" in m:
            self.quick_replies(m["quick_replies"], "message.quick_replies")

    def attachment(self, a: Any, path: str) -> None:
        if (a := self.obj(a, path)) is None:
            return
        if a.get("type") != "template":
            self.add("ATTACHMENT_TYPE_UNSUPPORTED", f"{path}.type is {_excerpt(a.get('type'))}; MM takes "
                     "only templates (generic, button, media, product, receipt, coupon)")
            return
        self.unknown(a, {"type", "payload"}, path)
        p = self.obj(a.get("payload"), f"{path}.payload")
        if p is None:
            return
        path = f"{path}.payload"
        tt = p.get("template_type")
        if tt == "generic":
            self.generic(p, path)
        elif tt == "button":
            self.button_template(p, path)
        elif tt == "media":
            self.media_template(p, path)
        elif tt == "product":
            self.product(p, path)
        elif tt == "receipt":
            self.receipt(p, path)
        elif tt == "coupon":
            self.coupon(p, path)
        else:
            self.add("TEMPLATE_UNSUPPORTED", f"{path}.template_type is {_excerpt(tt)}; MM takes "
                     f"{', '.join(MM_TEMPLATES)}")

    def elements(self, p: dict, path: str, *, lo: int, hi: int) -> list:
        els = p.get("elements")
        if els is None:
            self.add("REQUIRED_FIELD_MISSING", f"{path}.elements is missing")
            return []
        if (els := self.array(els, f"{path}.elements")) is None:
            return []
        if not els:
            self.add("REQUIRED_FIELD_MISSING", f"{path}.elements is empty")
        elif len(els) < lo or len(els) > hi:
            want = f"exactly {lo}" if lo == hi else f"at most {hi}"
            self.add("TOO_MANY_ELEMENTS", f"{path}.elements has {len(els)} items; MM allows {want}")
        return els

    def generic(self, p: dict, path: str) -> None:
        self.unknown(p, _GENERIC_KEYS, path)
        self.string(p, "text", path, required=False, max_len=self.lim.text_max, too_long="TEXT_TOO_LONG",
                    macros=True, count_breaks=True)
        self.enum(p, "image_aspect_ratio", path, ASPECT_RATIOS, lower=True)
        self.boolean(p, "sharable", path)
        els = self.elements(p, path, lo=1, hi=self.lim.elements_max)
        carousel = len(els) > 1
        for i, el in enumerate(els):
            self.generic_element(el, f"{path}.elements[{i}]", carousel)

    def generic_element(self, el: Any, path: str, carousel: bool) -> None:
        if (el := self.obj(el, path)) is None:
            return
        self.unknown(el, _ELEMENT_KEYS, path)
        self.string(el, "title", path, required=True, max_len=self.lim.title_max, too_long="TITLE_TOO_LONG",
                    macros=True)
        self.string(el, "subtitle", path, required=False, max_len=self.lim.subtitle_max,
                    too_long="SUBTITLE_TOO_LONG", macros=True)
        mt = el.get("media_type", "image")   # Meta's documented default
        self.enum(el, "media_type", path, ("image", "video"))
        if not any(el.get(k) not in (None, "", []) for k in _ELEMENT_KEYS - {"title", "media_type"}):
            self.add("REQUIRED_FIELD_MISSING", f"{path} has only a title; a card needs at least one "
                     "more field (subtitle, image, button or default_action)")
        if "image_url" in el:
            self.url(el, "image_url", path, required=False)
        if mt == "video":
            vid = el.get("video_id")
            if vid is None or vid == "":
                self.add("VIDEO_ID_MISSING", f"{path} has media_type video but no video_id")
            elif not isinstance(vid, (str, int)) or isinstance(vid, bool):
                self.add("INVALID_FIELD", f"{path}.video_id must be a string")
        elif "video_id" in el:
            self.add("INVALID_FIELD", f"{path}.video_id is set but media_type is not video")
        if mt == "image" and not el.get("image_url") and not el.get("image_urls"):
            self.add("IMAGE_URL_MISSING", f"{path} has no image_url, and media_type "
                     + ("is image" if "media_type" in el else "defaults to image")
                     + " (error 2300022): add an image or send the text without a card")
        if "image_urls" in el:
            self.image_urls(el, path, carousel)
        if "default_action" in el:
            self.default_action(el["default_action"], f"{path}.default_action")
        if "buttons" in el:
            self.buttons(el["buttons"], f"{path}.buttons", video=mt == "video")

    def image_urls(self, el: dict, path: str, carousel: bool) -> None:
        where = f"{path}.image_urls"
        if carousel:
            self.add("MULTI_IMAGE_IN_CAROUSEL", f"{where}: multi-image cards are not allowed in a carousel")
        if "image_url" in el:
            self.add("IMAGE_URL_AND_IMAGE_URLS", f"{path} has both image_url and image_urls")
        if (imgs := self.array(el["image_urls"], where)) is None:
            return
        if not imgs:
            self.add("REQUIRED_FIELD_MISSING", f"{where} is empty")
        if len(imgs) > self.lim.images_max:
            self.add("TOO_MANY_IMAGES", f"{where} has {len(imgs)} images; MM allows {self.lim.images_max}")
        heroes = 0
        for i, img in enumerate(imgs):
            if (img := self.obj(img, f"{where}[{i}]")) is None:
                continue
            self.unknown(img, {"url", "is_hero_image"}, f"{where}[{i}]")
            self.url(img, "url", f"{where}[{i}]", required=True)
            if img.get("is_hero_image") in (True, "true"):
                heroes += 1
        if heroes > 1:
            self.add("TOO_MANY_HERO_IMAGES", f"{where} has {heroes} hero images; at most one is allowed")

    def default_action(self, da: Any, path: str) -> None:
        if (da := self.obj(da, path)) is None:
            return
        if da.get("type") != "web_url":
            self.add("INVALID_FIELD", f"{path}.type must be web_url")
        self.unknown(da, _WEB_URL_KEYS - {"title"}, path)
        self.url(da, "url", path, required=True)
        self.web_url_options(da, path)

    def web_url_options(self, b: dict, path: str) -> None:
        self.enum(b, "webview_height_ratio", path, WEBVIEW_RATIOS)
        self.boolean(b, "messenger_extensions", path)
        if "fallback_url" in b:
            self.url(b, "fallback_url", path, required=False)
        self.enum(b, "webview_share_button", path, ("hide",))

    def buttons(self, bs: Any, path: str, *, video: bool = False, min_count: int = 0) -> None:
        if (bs := self.array(bs, path)) is None:
            return
        self.buttons_seen += len(bs)
        if len(bs) > self.lim.buttons_max:
            self.add("TOO_MANY_BUTTONS", f"{path} has {len(bs)} buttons; MM allows {self.lim.buttons_max}")
        elif len(bs) < min_count:
            self.add("REQUIRED_FIELD_MISSING", f"{path} is empty; a button template needs 1-3 buttons")
        for i, b in enumerate(bs):
            self.button(b, f"{path}[{i}]", video=video)

    def button(self, b: Any, path: str, *, video: bool) -> None:
        if (b := self.obj(b, path)) is None:
            return
        t = b.get("type")
        if t not in self.lim.button_types:
            contested = t in DOCUMENTED_BUTTON_TYPES
            self.add("BUTTON_TYPE_UNSUPPORTED", f"{path}.type is {_excerpt(t)}; the rules take "
                     f"{', '.join(self.lim.button_types)}" + (
                         " (MM's pages show this type, but error 2300023 says 'Valid button types are: "
                         "web_url': the contested reading, see rules mm_button_types)" if contested else ""))
            return
        if video and t != "web_url":
            self.add("BUTTON_TYPE_UNSUPPORTED", f"{path} is a {t} button on a video card; only web_url is allowed")
        self.string(b, "title", path, required=True, max_len=self.lim.button_title_max,
                    too_long="BUTTON_TITLE_TOO_LONG", empty_code="BUTTON_TITLE_EMPTY")
        if t == "web_url":
            self.unknown(b, _WEB_URL_KEYS, path)
            self.url(b, "url", path, required=True)
            self.web_url_options(b, path)
        elif t == "postback":
            self.unknown(b, _POSTBACK_KEYS, path)
            self.string(b, "payload", path, required=True, max_len=self.lim.payload_max, too_long="PAYLOAD_TOO_LONG",
                        macros=None)
        else:
            self.unknown(b, _APP_KEYS, path)
            if not b.get("android_url") and not b.get("ios_url"):
                self.add("REQUIRED_FIELD_MISSING", f"{path} needs android_url or ios_url")
            for k in ("android_url", "ios_url"):
                if k in b and not isinstance(b[k], str):
                    self.add("INVALID_FIELD", f"{path}.{k} must be a string")

    def button_template(self, p: dict, path: str) -> None:
        self.unknown(p, _BUTTON_TPL_KEYS, path)
        self.string(p, "text", path, required=True, max_len=self.lim.text_max, too_long="TEXT_TOO_LONG",
                    count_breaks=True)
        if "buttons" not in p:
            self.add("REQUIRED_FIELD_MISSING", f"{path}.buttons is missing; a button template needs 1-3 buttons")
        else:
            self.buttons(p["buttons"], f"{path}.buttons", min_count=1)

    def media_template(self, p: dict, path: str) -> None:
        self.unknown(p, _MEDIA_TPL_KEYS, path)
        self.boolean(p, "sharable", path)
        els = self.elements(p, path, lo=1, hi=1)
        for i, el in enumerate(els[:1]):
            where = f"{path}.elements[{i}]"
            if (el := self.obj(el, where)) is None:
                continue
            self.unknown(el, _MEDIA_EL_KEYS, where)
            if el.get("media_type") not in ("image", "video"):
                self.add("INVALID_FIELD" if "media_type" in el else "REQUIRED_FIELD_MISSING",
                         f"{where}.media_type must be image or video")
            has_id = el.get("attachment_id") not in (None, "")
            has_url = el.get("url") not in (None, "")
            if has_id == has_url:
                self.add("REQUIRED_FIELD_MISSING" if not has_id else "INVALID_FIELD",
                         f"{where} needs exactly one of attachment_id or url")
            if has_id and (not isinstance(el["attachment_id"], (str, int)) or isinstance(el["attachment_id"], bool)):
                self.add("INVALID_FIELD", f"{where}.attachment_id must be a string")
            if has_url and not has_id:
                if not is_valid_url(el["url"]):
                    self.add("INVALID_URL", f"{where}.url is not a valid http(s) URL: {_excerpt(el['url'])}")
                elif not is_facebook_url(el["url"]):
                    self.add("MEDIA_URL_NOT_FACEBOOK", f"{where}.url is not Facebook-hosted: "
                             f"{_excerpt(el['url'])}; upload it and use attachment_id")
            if "buttons" in el:
                self.buttons(el["buttons"], f"{where}.buttons")

    def product(self, p: dict, path: str) -> None:
        self.unknown(p, {"template_type", "elements"}, path)
        for i, el in enumerate(self.elements(p, path, lo=1, hi=self.lim.elements_max)):
            where = f"{path}.elements[{i}]"
            if (el := self.obj(el, where)) is None:
                continue
            self.unknown(el, {"id"}, where)
            if el.get("id") in (None, ""):
                self.add("REQUIRED_FIELD_MISSING", f"{where}.id is missing")

    def receipt(self, p: dict, path: str) -> None:
        for key in ("recipient_name", "order_number", "currency", "payment_method"):
            self.string(p, key, path, required=True, max_len=None, macros=None)
        if (s := p.get("summary")) is None:
            self.add("REQUIRED_FIELD_MISSING", f"{path}.summary is missing")
        elif (s := self.obj(s, f"{path}.summary")) is not None and s.get("total_cost") is None:
            self.add("REQUIRED_FIELD_MISSING", f"{path}.summary.total_cost is missing")

    def coupon(self, p: dict, path: str) -> None:
        self.string(p, "title", path, required=True, max_len=self.lim.title_max, too_long="TITLE_TOO_LONG")
        self.string(p, "subtitle", path, required=False, max_len=self.lim.subtitle_max, too_long="SUBTITLE_TOO_LONG")
        self.string(p, "coupon_code", path, required=True, max_len=None, macros=None)
        self.url(p, "coupon_url", path, required=True)
        self.string(p, "coupon_pre_message", path, required=False, max_len=self.lim.text_max,
                    too_long="TEXT_TOO_LONG", macros=True)

    def quick_replies(self, qrs: Any, path: str) -> None:
        if (qrs := self.array(qrs, path)) is None:
            return
        if len(qrs) > self.lim.quick_replies_max:
            self.add("TOO_MANY_QUICK_REPLIES", f"{path} has {len(qrs)} items; MM allows "
                     f"{self.lim.quick_replies_max}")
        for i, qr in enumerate(qrs):
            where = f"{path}[{i}]"
            if (qr := self.obj(qr, where)) is None:
                continue
            self.unknown(qr, _QR_KEYS, where)
            ct = qr.get("content_type")
            if ct not in QUICK_REPLY_TYPES:
                self.add("QUICK_REPLY_UNSUPPORTED", f"{where}.content_type is {_excerpt(ct)}; MM takes "
                         f"{', '.join(QUICK_REPLY_TYPES)}")
                continue
            if ct == "text":
                has_image = bool(qr.get("image_url"))
                self.string(qr, "title", where, required=not has_image, max_len=self.lim.quick_reply_title_max,
                            too_long="QUICK_REPLY_TITLE_TOO_LONG")
                self.string(qr, "payload", where, required=True, max_len=self.lim.payload_max,
                            too_long="PAYLOAD_TOO_LONG", macros=None)
            if "image_url" in qr:
                self.url(qr, "image_url", where, required=False)


def validate_mm_message(message: Any, *, limits: ContentLimits | None = None,
                        max_line_breaks: int | None = None) -> list[Problem]:
    """Every documented MM constraint `message` breaks; [] when it can be sent as it is.

    `limits` default to the packaged rules; `max_line_breaks` (a convert policy) overrides
    the rules' mm_line_breaks_max.
    """
    lim = limits or default_limits()
    check = _Check(lim, lim.line_breaks_max if max_line_breaks is None else max_line_breaks)
    check.message(message)
    if check.buttons_seen > lim.buttons_per_message_max and not any(
            p.code == "TOO_MANY_BUTTONS" for p in check.problems):
        check.add("TOO_MANY_BUTTONS", f"the message carries {check.buttons_seen} buttons in all; error "
                  f"2300026 allows {lim.buttons_per_message_max} per message (rules "
                  "mm_buttons_per_message_max)")
    return check.problems


def _type(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)


def _excerpt(v: Any, n: int = 60) -> str:
    s = repr(v) if not isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."

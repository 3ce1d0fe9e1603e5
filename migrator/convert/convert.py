"""RN Send API message -> MM message, with every change and problem listed.

The converter rewrites what has an MM form, drops (and lists) what MM does not take, and
leaves everything that would change the meaning for a person: it never truncates. Its output
is then run through `validate_mm_message`, so an `exact` or `lossy` result always passes
pre-flight validation by construction; anything the validator finds makes it `needs_edit`.
"""

from __future__ import annotations

from typing import Any

from migrator.convert.buttons import (
    convert_buttons, convert_default_action, convert_quick_replies, pick,
)
from migrator.convert.limits import ContentLimits, default_limits
from migrator.convert.model import (
    Change, ConversionResult, ConvertPolicy, Problem, change, json_copy, outcome_of, problem,
)
from migrator.convert.placeholders import find_placeholders, map_placeholders
from migrator.convert.validate import _excerpt, _type, is_facebook_url, is_valid_url, validate_mm_message

_MESSAGE_KEYS = ("text", "attachment", "quick_replies")
_GENERIC_KEYS = ("template_type", "text", "image_aspect_ratio", "sharable", "elements")
_ELEMENT_KEYS = ("title", "subtitle", "media_type", "image_url", "image_urls", "video_id",
                 "default_action", "buttons")
_MEDIA_KEYS = ("template_type", "elements", "sharable")
_MEDIA_EL_KEYS = ("media_type", "attachment_id", "url", "buttons")
_PASS_THROUGH_TEMPLATES = ("product", "receipt", "coupon")


class _Conv:
    """State of one conversion: the policy and the findings so far."""

    def __init__(self, policy: ConvertPolicy, limits: ContentLimits):
        self.policy = policy
        self.limits = limits
        self.changes: list[Change] = []
        self.problems: list[Problem] = []

    def change(self, code: str, detail: str) -> None:
        self.changes.append(change(code, detail))

    def problem(self, code: str, detail: str) -> None:
        self.problems.append(problem(code, detail))

    # -- placeholders -----------------------------------------------------------------
    def personalised(self, obj: dict, key: str, path: str) -> None:
        """A field where MM resolves macros: rewrite partner placeholders as MM macros."""
        value = obj.get(key)
        if isinstance(value, str):
            new, mapped = map_placeholders(value)
            if mapped:
                obj[key] = new
                self.change("PLACEHOLDER_MAPPED", f"{path}.{key}: {', '.join(sorted(set(mapped)))} "
                            "rewritten as MM macros")

    def displayed(self, obj: dict, key: str, path: str) -> None:
        """A field where MM resolves no macros: a partner placeholder needs a person."""
        value = obj.get(key)
        if isinstance(value, str):
            for ph in dict.fromkeys(find_placeholders(value)):
                self.problem("PLACEHOLDER_NOT_ALLOWED", f"{path}.{key} contains {ph}; MM resolves "
                             "macros only in card titles/subtitles and greeting text")

    in_url = displayed

    # -- message ----------------------------------------------------------------------
    def message(self, m: dict) -> dict | None:
        has_text, has_att = "text" in m, "attachment" in m
        if has_text == has_att:
            self.problem("NOT_A_MESSAGE", "message must have exactly one of text or attachment")
            return None
        for k in m:
            if k == "metadata":
                self.change("METADATA_DROPPED", "message.metadata was dropped: MM does not document "
                            "it, so the app no longer gets it back in webhooks")
            elif k not in _MESSAGE_KEYS:
                self.change("FIELD_DROPPED", f"message.{k} was dropped: MM does not document it")
        out: dict[str, Any]
        if has_text:
            out = {"text": json_copy(m["text"])}
            self.displayed(out, "text", "message")
        else:
            converted = self.attachment(m["attachment"], "message.attachment")
            if converted is None:
                return None
            out = converted
        if m.get("quick_replies") == []:
            self.change("EMPTY_LIST_REMOVED", "message.quick_replies was an empty list and is left out")
        elif "quick_replies" in m:
            qrs = convert_quick_replies(m["quick_replies"], "message.quick_replies", self)
            if qrs != []:
                out["quick_replies"] = qrs
        return out

    def attachment(self, a: Any, path: str) -> dict | None:
        """Returns the message body ({"attachment": ...} or {"text": ...}); None if unsupported."""
        if not isinstance(a, dict):
            return {"attachment": json_copy(a)}  # the validator reports it
        t = a.get("type")
        if t in ("image", "video"):
            return self.media_attachment(a, path)
        if t == "template":
            return self.template(a, path)
        self.problem("ATTACHMENT_TYPE_UNSUPPORTED", f"{path}.type is {_excerpt(t)}: MM has no "
                     "equivalent (it takes text and templates only)")
        return None

    # -- plain image / video ------------------------------------------------------------
    def media_attachment(self, a: dict, path: str) -> dict | None:
        t = a["type"]
        p = a.get("payload")
        if not isinstance(p, dict):
            self.problem("REQUIRED_FIELD_MISSING", f"{path}.payload must be an object with "
                         "attachment_id or url")
            return {"attachment": json_copy(a)}
        for k in a:
            if k not in ("type", "payload"):
                self.change("FIELD_DROPPED", f"{path}.{k} was dropped: MM does not document it")
        for k in p:
            if k not in ("attachment_id", "url", "is_reusable"):
                self.change("FIELD_DROPPED", f"{path}.payload.{k} was dropped: MM does not document it")
        el: dict[str, Any] = {"media_type": t}
        if p.get("attachment_id") not in (None, ""):
            el["attachment_id"] = json_copy(p["attachment_id"])
            if p.get("url") not in (None, ""):
                self.change("FIELD_DROPPED", f"{path}.payload.url was dropped: the attachment_id "
                            "names the media (the Send API takes one or the other)")
        elif p.get("url") not in (None, ""):
            url = p["url"]
            if (t == "image" and self.policy.non_facebook_media_url == "to_generic"
                    and is_valid_url(url) and not is_facebook_url(url)):
                self.change("IMAGE_TO_GENERIC_CARD", f"{path}: the image at {_excerpt(url)} became a "
                            f"card titled {_excerpt(self.policy.generic_image_title)} (MM media "
                            "templates take only uploads or Facebook URLs)")
                card = {"title": self.policy.generic_image_title, "image_url": url}
                self.personalised(card, "title", f"{path} (generic_image_title)")
                self.in_url(card, "image_url", path)
                return {"attachment": {"type": "template", "payload": {
                    "template_type": "generic", "elements": [card]}}}
            el["url"] = json_copy(url)
            self.in_url(el, "url", path)
        self.change("ATTACHMENT_TO_MEDIA_TEMPLATE", f"{path}: the {t} attachment became an MM media "
                    "template showing the same " + t)
        return {"attachment": {"type": "template", "payload": {"template_type": "media", "elements": [el]}}}

    # -- templates ----------------------------------------------------------------------
    def template(self, a: dict, path: str) -> dict | None:
        for k in a:
            if k not in ("type", "payload"):
                self.change("FIELD_DROPPED", f"{path}.{k} was dropped: MM does not document it")
        p = a.get("payload")
        if not isinstance(p, dict):
            return {"attachment": {"type": "template", "payload": json_copy(p)}}
        path = f"{path}.payload"
        tt = p.get("template_type")
        if tt == "generic":
            payload = self.generic(p, path)
        elif tt == "button":
            return self.button_template(p, path)
        elif tt == "media":
            return self.media_template(p, path)
        elif tt in _PASS_THROUGH_TEMPLATES:
            payload = json_copy(p)
        else:
            self.problem("TEMPLATE_UNSUPPORTED", f"{path}.template_type {_excerpt(tt)} has no MM "
                         "equivalent (MM takes generic, button, media, product, receipt, coupon)")
            return None
        return {"attachment": {"type": "template", "payload": payload}}

    def generic(self, p: dict, path: str) -> dict:
        out = pick(p, _GENERIC_KEYS, path, self)
        self.personalised(out, "text", path)
        if isinstance(out.get("elements"), list):
            out["elements"] = [self.generic_element(el, f"{path}.elements[{i}]")
                               for i, el in enumerate(out["elements"])]
        return out

    def nulls(self, out: dict, path: str) -> None:
        """A null field carries nothing: leave it out rather than send `"image_url": null`."""
        for k in [k for k, v in out.items() if v is None]:
            del out[k]
            self.change("NULL_FIELD_REMOVED", f"{path}.{k} was null and is left out")

    def buttons(self, out: dict, path: str) -> None:
        if out.get("buttons") == []:
            del out["buttons"]
            self.change("EMPTY_LIST_REMOVED", f"{path}.buttons was an empty list and is left out")
        elif "buttons" in out and self.emptied_buttons(out, path):
            del out["buttons"]
            self.change("EMPTY_BUTTONS_REMOVED", f"{path}.buttons: no button was left, so the "
                        "empty list was removed")

    def emptied_buttons(self, out: dict, path: str) -> bool:
        """Convert `out["buttons"]` in place; True when a list that had buttons has none left."""
        had = isinstance(out["buttons"], list) and len(out["buttons"]) > 0
        out["buttons"] = convert_buttons(out["buttons"], f"{path}.buttons", self)
        return had and out["buttons"] == []

    def generic_element(self, el: Any, path: str) -> Any:
        if not isinstance(el, dict):
            return el
        out = pick(el, _ELEMENT_KEYS, path, self)
        self.nulls(out, path)
        self.personalised(out, "title", path)
        self.personalised(out, "subtitle", path)
        self.in_url(out, "image_url", path)
        if "default_action" in out:
            da = convert_default_action(out["default_action"], f"{path}.default_action", self)
            if da is None:
                del out["default_action"]
            else:
                out["default_action"] = da
        self.buttons(out, path)
        return out

    def button_template(self, p: dict, path: str) -> dict:
        out = pick(p, ("template_type", "text", "buttons"), path, self)
        self.displayed(out, "text", path)
        if "buttons" in out and self.emptied_buttons(out, path):
            self.change("BUTTON_TEMPLATE_TO_TEXT", f"{path}: no button MM takes was left, so the "
                        "button template became a text message with the same text")
            return {"text": out.get("text")}
        return {"attachment": {"type": "template", "payload": out}}

    def media_template(self, p: dict, path: str) -> dict:
        out = pick(p, _MEDIA_KEYS, path, self)
        els = out.get("elements")
        if isinstance(els, list):
            out["elements"] = [self.media_element(el, f"{path}.elements[{i}]") for i, el in enumerate(els)]
            if (len(els) == 1 and isinstance(el0 := out["elements"][0], dict)
                    and el0.get("media_type") == "image" and "attachment_id" not in el0
                    and self.policy.non_facebook_media_url == "to_generic"
                    and is_valid_url(el0.get("url")) and not is_facebook_url(el0.get("url"))):
                card = {"title": self.policy.generic_image_title, "image_url": el0["url"]}
                self.personalised(card, "title", f"{path} (generic_image_title)")
                if "buttons" in el0:
                    card["buttons"] = el0["buttons"]
                self.change("MEDIA_TEMPLATE_TO_GENERIC_CARD", f"{path}: the image at "
                            f"{_excerpt(el0['url'])} became a card titled "
                            f"{_excerpt(self.policy.generic_image_title)} (MM media templates take "
                            "only uploads or Facebook URLs)")
                generic = {"template_type": "generic", "elements": [card]}
                if "sharable" in out:
                    generic["sharable"] = out["sharable"]
                return {"attachment": {"type": "template", "payload": generic}}
        return {"attachment": {"type": "template", "payload": out}}

    def media_element(self, el: Any, path: str) -> Any:
        if not isinstance(el, dict):
            return el
        out = pick(el, _MEDIA_EL_KEYS, path, self)
        self.nulls(out, path)
        self.in_url(out, "url", path)
        self.buttons(out, path)
        return out


def _unwrap(obj: Any) -> dict | None:
    """The message object of an RN request body / library entry, or a bare message."""
    if not isinstance(obj, dict):
        return None
    if "message" in obj:
        m = obj["message"]
        return m if isinstance(m, dict) else None
    if "text" in obj or "attachment" in obj:
        return obj
    return None


def convert_message(obj: Any, policy: ConvertPolicy | None = None, *,
                    limits: ContentLimits | None = None) -> ConversionResult:
    """Convert one RN Send API body or bare message to MM form. Never raises.

    `limits` come from the rules in force (default: the packaged rules)."""
    policy = policy or _DEFAULT_POLICY
    try:
        return _convert(obj, policy, limits or default_limits())
    except Exception as exc:  # a bug must not stop an audit of a whole estate
        return ConversionResult(outcome="unsupported", message=None, problems=[problem(
            "CONVERTER_ERROR", f"the converter failed ({type(exc).__name__}); please report this input")])


def _convert(obj: Any, policy: ConvertPolicy, limits: ContentLimits) -> ConversionResult:
    m = _unwrap(obj)
    if m is None:
        return ConversionResult(outcome="unsupported", message=None, problems=[problem(
            "NOT_A_MESSAGE", 'expected a Send API body {"recipient", "message"} or a message object '
            f"with text or attachment, got {_describe(obj)}")])
    conv = _Conv(policy, limits)
    if isinstance(obj, dict) and m is not obj and (
            obj.get("messaging_type") == "MESSAGE_TAG" or obj.get("tag") not in (None, "")):
        conv.change("MESSAGE_TAG_SEND", f"the RN send used tag {_excerpt(obj.get('tag'))}: Meta routes "
                    "such content to Utility templates, which may not carry marketing")
    out = conv.message(m)
    problems = conv.problems
    if out is not None:
        seen = {(p.code, p.detail) for p in problems}
        for p in validate_mm_message(out, limits=limits, max_line_breaks=policy.max_line_breaks):
            if (p.code, p.detail) not in seen:
                seen.add((p.code, p.detail))
                problems.append(p)
    outcome = outcome_of(conv.changes, problems)
    sendable = outcome in ("exact", "lossy")
    return ConversionResult(outcome=outcome, message=out if sendable else None,
                            draft=out if outcome == "needs_edit" else None,
                            changes=conv.changes, problems=problems)


def _describe(obj: Any) -> str:
    if isinstance(obj, dict):
        keys = ", ".join(_excerpt(k, 30) for k in list(obj)[:5])
        return f"an object with keys {keys}" if keys else "an empty object"
    kind = _type(obj)
    return kind if kind == "null" else ("an " if kind[0] in "aeiou" else "a ") + kind


_DEFAULT_POLICY = ConvertPolicy()

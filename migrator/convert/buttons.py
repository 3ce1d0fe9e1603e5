"""Buttons, default actions and quick replies: which Send API types MM takes.

MM documents `web_url` (kept with its webview options), `postback` and `app` buttons, but its
error 2300023 says only web_url is valid: the rules' `mm_button_types` decide (default web_url,
the reading that cannot fail a cutover). A documented type the rules do not take is dropped
with CONTESTED_BUTTON_DROPPED; one they take but 2300023 contests is kept with
RELIES_ON_CONTESTED_BUTTON_TYPE. Every other Send API type (phone_number, account_link,
game_play, audio_call, ...) is dropped (lossy, listed) or kept in the draft for a person to fix
(policy `unsupported_buttons=refuse`, the validator then reports error 2300023). A type in
capitals (WEB_URL) is lowercased, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Callable

from migrator.convert.limits import DOCUMENTED_BUTTON_TYPES
from migrator.convert.model import json_copy
from migrator.convert.validate import QUICK_REPLY_TYPES, _excerpt

WEB_URL_KEYS = ("type", "url", "title", "webview_height_ratio", "messenger_extensions",
                "fallback_url", "webview_share_button")
POSTBACK_KEYS = ("type", "title", "payload")
APP_KEYS = ("type", "title", "android_url", "ios_url")
QUICK_REPLY_KEYS = ("content_type", "title", "payload", "image_url")
BUTTON_KEYS = {"web_url": WEB_URL_KEYS, "postback": POSTBACK_KEYS, "app": APP_KEYS}   # what each type keeps


def pick(obj: dict, keys: tuple[str, ...], path: str, conv) -> dict:
    """Copy the documented keys of `obj`; report every other key as dropped."""
    out = {k: json_copy(obj[k]) for k in keys if k in obj}
    for k in obj:
        if k not in keys:
            conv.change("FIELD_DROPPED", f"{path}.{k} was dropped: MM does not document it")
    return out


def _each_object(items: Any, path: str, convert_one: Callable[[dict, str], dict | None]) -> Any:
    """`convert_one(item, where)` for each object in the list `items`; None from it drops the item.

    A value that is not a list, and an item that is not an object, is copied unchanged: the
    validator reports the wrong type where it stands (the converter does not guess a shape).
    """
    if not isinstance(items, list):
        return json_copy(items)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            out.append(json_copy(item))
            continue
        converted = convert_one(item, f"{path}[{i}]")
        if converted is not None:
            out.append(converted)
    return out


def _shown_title(button: dict) -> str:
    """The button's title as a change message quotes it."""
    return _excerpt(button["title"]) if isinstance(button.get("title"), str) else "(untitled)"


def convert_buttons(buttons: Any, path: str, conv) -> Any:
    return _each_object(buttons, path, lambda button, where: _convert_button(button, where, conv))


def _convert_button(b: dict, where: str, conv) -> dict | None:
    """The MM form of one button, or None when it is dropped (with the change that says so)."""
    t = b.get("type")
    if isinstance(t, str) and t != t.lower() and t.lower() in DOCUMENTED_BUTTON_TYPES:
        conv.change("BUTTON_TYPE_LOWERCASED", f"{where}.type {_excerpt(t)} became {t.lower()!r}")
        b = {**b, "type": t.lower()}
        t = t.lower()
    if t in DOCUMENTED_BUTTON_TYPES and t not in conv.limits.button_types:
        return _unsupported(b, conv, "CONTESTED_BUTTON_DROPPED",
                            f"{where}: {t} button {_shown_title(b)} was dropped: 2300023 says "
                            "'Valid button types are: web_url' (rules mm_button_types)")
    if t in DOCUMENTED_BUTTON_TYPES and t != "web_url":
        conv.change("RELIES_ON_CONTESTED_BUTTON_TYPE", f"{where}: a {t} button, which the rules "
                    "allow but 2300023's text does not")
    if t in BUTTON_KEYS:
        kept = pick(b, BUTTON_KEYS[t], where, conv)
        conv.displayed(kept, "title", where)
        if t == "web_url":
            conv.in_url(kept, "url", where)
            conv.in_url(kept, "fallback_url", where)
        return kept
    return _unsupported(b, conv, "BUTTON_DROPPED",   # refused: the validator reports BUTTON_TYPE_UNSUPPORTED
                        f"{where}: {_excerpt(t)} button {_shown_title(b)} was dropped: "
                        f"the rules take only {', '.join(conv.limits.button_types)} buttons")


def _unsupported(item: dict, conv, code: str, detail: str) -> dict | None:
    """What MM does not take: dropped with the change `code` (policy unsupported_buttons=drop), or
    kept unchanged in the draft, where the validator refuses it (=refuse)."""
    if conv.policy.unsupported_buttons == "drop":
        conv.change(code, detail)
        return None
    return json_copy(item)


def convert_default_action(da: Any, path: str, conv) -> Any:
    """Returns the converted default_action, or None when it was dropped."""
    if not isinstance(da, dict):
        return json_copy(da)
    if da.get("type") != "web_url":
        return _unsupported(da, conv, "DEFAULT_ACTION_DROPPED", f"{path} of type {_excerpt(da.get('type'))} "
                            "was dropped: a card's default action can only open a URL")
    keys = tuple(k for k in WEB_URL_KEYS if k != "title")
    out = {k: json_copy(da[k]) for k in keys if k in da}
    for k in da:
        if k == "title":
            conv.change("DEFAULT_ACTION_TITLE_REMOVED", f"{path}.title was removed: a default "
                        "action has no visible title")
        elif k not in keys:
            conv.change("FIELD_DROPPED", f"{path}.{k} was dropped: MM does not document it")
    conv.in_url(out, "url", path)
    conv.in_url(out, "fallback_url", path)
    return out


def convert_quick_replies(qrs: Any, path: str, conv) -> Any:
    return _each_object(qrs, path, lambda reply, where: _convert_quick_reply(reply, where, conv))


def _convert_quick_reply(qr: dict, where: str, conv) -> dict | None:
    """The MM form of one quick reply, or None when it is dropped (with the change that says so)."""
    ct = qr.get("content_type")
    if ct in QUICK_REPLY_TYPES:
        kept = pick(qr, QUICK_REPLY_KEYS, where, conv)
        conv.displayed(kept, "title", where)
        return kept
    return _unsupported(qr, conv, "QUICK_REPLY_DROPPED", f"{where}: quick reply of type {_excerpt(ct)} "
                        f"was dropped: MM takes {', '.join(QUICK_REPLY_TYPES)}")

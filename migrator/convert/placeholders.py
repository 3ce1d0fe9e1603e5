"""Partner-side personalisation placeholders and MM macros.

RN had no macros: partners personalised content on their side with their own syntax. MM
resolves exactly `{{first_name}}`, `{{last_name}}`, `{{full_name}}`, and only in a card's
title/subtitle and the generic template's greeting text. The syntaxes recognised here
(case-insensitive; `first_name` may also be written `firstname` or `first name`, likewise
last/full):

- `{{first_name}}`, `{{ first_name }}`, `{{user.first_name}}`, `{{contact.first_name}}`,
  `{{subscriber.first_name}}`   (Jinja/Handlebars/ManyChat style)
- `{first_name}`                (Python format style)
- `%FIRST_NAME%`                (mail-merge style)
- `[first_name]`                (bracket style)

Any other `{{...}}` is an unknown macro: MM would try to resolve it (error 2300038).
"""

from __future__ import annotations

import re

_NAME = r"(first|last|full)[ _]?name"

PARTNER_PLACEHOLDER = re.compile(
    r"\{\{\s*(?:(?:user|contact|subscriber)\.)?" + _NAME + r"\s*\}\}"
    r"|(?<!\{)\{\s*" + _NAME + r"\s*\}(?!\})"
    r"|%" + _NAME + r"%"
    r"|\[\s*" + _NAME + r"\s*\]",
    re.IGNORECASE,
)

#: Any double-brace expression: a macro as MM would see it.
MACRO = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
MM_MACROS = frozenset({"first_name", "last_name", "full_name"})


def _which(m: re.Match) -> str:
    part = next(g for g in m.groups() if g is not None)
    return f"{part.lower()}_name"


def map_placeholders(text: str) -> tuple[str, list[str]]:
    """Rewrite partner placeholders as MM macros; returns (new text, placeholders rewritten)."""
    mapped: list[str] = []

    def sub(m: re.Match) -> str:
        macro = "{{" + _which(m) + "}}"
        if m.group(0) != macro:
            mapped.append(m.group(0))
        return macro

    return PARTNER_PLACEHOLDER.sub(sub, text), mapped


def find_placeholders(text: str) -> list[str]:
    """Partner placeholders that are not in `{{...}}` form (the validator reports those)."""
    return [m.group(0) for m in PARTNER_PLACEHOLDER.finditer(text) if not m.group(0).startswith("{{")]


def find_macros(text: str) -> list[str]:
    """Every `{{...}}` expression in the text, as written."""
    return [m.group(0) for m in MACRO.finditer(text)]


def is_mm_macro(expr: str) -> bool:
    return expr[2:-2] in MM_MACROS

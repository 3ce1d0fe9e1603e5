"""The content limits in force, read from the rules: nothing here is a literal.

Why a small frozen object: the validator runs on every message of an estate, so it reads
plain attributes, not the pydantic rules model. Build it with `ContentLimits.from_rules(r)`
after `--rules FILE`; `default_limits()` is the packaged rules' view.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class ContentLimits:
    text_max: int
    buttons_max: int                 # per card / button template (2300026)
    buttons_per_message_max: int     # per message (2300026 "per message")
    button_types: tuple[str, ...]    # allowed button types (2300023; contested)
    button_title_max: int
    title_max: int
    subtitle_max: int
    elements_max: int
    images_max: int
    quick_replies_max: int
    quick_reply_title_max: int
    payload_max: int
    line_breaks_max: int

    @classmethod
    def from_rules(cls, rules) -> "ContentLimits":
        return cls(
            text_max=rules.mm_text_max_chars.value,
            buttons_max=rules.mm_buttons_max.value,
            buttons_per_message_max=rules.mm_buttons_per_message_max.value,
            button_types=tuple(rules.mm_button_types.value),
            button_title_max=rules.mm_button_title_max_chars.value,
            title_max=rules.mm_card_title_max_chars.value,
            subtitle_max=rules.mm_card_subtitle_max_chars.value,
            elements_max=rules.mm_cards_max.value,
            images_max=rules.mm_images_max.value,
            quick_replies_max=rules.mm_quick_replies_max.value,
            quick_reply_title_max=rules.mm_quick_reply_title_max_chars.value,
            payload_max=rules.mm_payload_max_chars.value,
            line_breaks_max=rules.mm_line_breaks_max.value,
        )


@lru_cache(maxsize=1)
def default_limits() -> ContentLimits:
    from migrator.rules import load_rules

    return ContentLimits.from_rules(load_rules())


#: Button types Meta's pages document at all; those outside `button_types` are the contested ones.
DOCUMENTED_BUTTON_TYPES = ("web_url", "postback", "app")

def text_length(s: str) -> int:
    """Meta does not say whether it counts code points or UTF-16 units: the larger of both."""
    return max(len(s), len(s.encode("utf-16-le", "surrogatepass")) // 2)


def line_breaks(s: str) -> int:
    """CRLF counts once; LF, CR, U+2028 and U+2029 each count as a line break."""
    t = s.replace("\r\n", "\n")
    return t.count("\n") + t.count("\r") + t.count("\u2028") + t.count("\u2029")


def has_lone_surrogate(s: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in s)

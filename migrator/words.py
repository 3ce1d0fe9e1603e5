"""Real plurals for every surface: "1 send", "2 sends", "1 batch", "0 pages" (never "page(s)")."""

from __future__ import annotations

_IRREGULAR = {"person": "people", "is": "are", "was": "were", "has": "have", "needs": "need"}


def plural_of(word: str) -> str:
    """English plural of one lower-case noun (the few this tool uses; irregular ones listed)."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 send', '2 sends', '1,234 batches': the count (with thousands separators) and the noun."""
    return f"{n:,} {word if n == 1 else (many or plural_of(word))}"


def noun(n: int, word: str, many: str | None = None) -> str:
    """The noun alone, agreeing with `n` (for templates that print the number themselves)."""
    return word if n == 1 else (many or plural_of(word))

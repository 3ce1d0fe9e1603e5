"""Access tokens: checked before any request, and scrubbed from every error text.

Why: an access token with an inner newline (a token file pasted with a line break, a CRLF file)
goes into the `Authorization` header; httpx then fails with "Illegal header value b'Bearer ...'",
which prints and stores the token, and a hand-written HTTP/1.1 transport would send an injected
header line. Meta's tokens are printable ASCII without spaces, so anything else is refused before
a request is built, with a message that names the kind of character, never the token itself.

`scrub` removes a token, and any piece of it at least `MIN_PREFIX` characters long that starts
where the token starts (a truncated echo such as "Bearer EAAG1234..."), from any text.
"""

from __future__ import annotations

import unicodedata

MIN_PREFIX = 8
REDACTED = "[access token removed]"


def token_problem(token: str) -> str | None:
    """What is wrong with `token` as an HTTP bearer token (None: fine). Never quotes the token."""
    if not token:
        return "is empty"
    for i, ch in enumerate(token, 1):
        if ch in "\r\n":
            return f"contains a line break (character {i} of {len(token)})"
        if ch == "\0":
            return f"contains a NUL byte (character {i} of {len(token)})"
        if ch.isspace():
            return f"contains whitespace (character {i} of {len(token)})"
        if ord(ch) < 32 or ord(ch) == 127:
            return f"contains a control character (character {i} of {len(token)})"
        if ord(ch) > 127:
            kind = "an invisible formatting character" if unicodedata.category(ch) == "Cf" else "a non-ASCII character"
            return f"contains {kind} (character {i} of {len(token)})"
    return None


def scrub(text: str | None, *secrets: str | None) -> str | None:
    """`text` with every secret, and every run of >= MIN_PREFIX leading characters of one, removed."""
    if not text or not isinstance(text, str):
        return text
    for secret in secrets:
        if not secret or len(secret) < MIN_PREFIX:
            if secret:
                text = text.replace(secret, REDACTED)
            continue
        head = secret[:MIN_PREFIX]
        out: list[str] = []
        pos = 0
        while True:
            i = text.find(head, pos)
            if i < 0:
                out.append(text[pos:])
                break
            j = i + MIN_PREFIX
            k = MIN_PREFIX
            while j < len(text) and k < len(secret) and text[j] == secret[k]:
                j += 1
                k += 1
            out.append(text[pos:i])
            out.append(REDACTED)
            pos = j
        text = "".join(out)
    return text


__all__ = ["MIN_PREFIX", "REDACTED", "scrub", "token_problem"]

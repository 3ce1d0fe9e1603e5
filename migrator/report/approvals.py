"""Which of a page's messages the business must approve, named so a person recognises them.

A page needs content work when some of its RN messages cannot be sent on MM as they are
(`audit_contents.outcome` needs_edit or unsupported). The business is told which ones: the
topic, the first words of the text (or what the message is, for media and cards), every
problem in words, and what the latest plan's spec does about it (a replacement text to
approve, another message, or leaving those subscribers out).
"""

from __future__ import annotations

import json
import re
from typing import Any

from migrator.report.models import ContentApproval

FIRST_WORDS = 10
MAX_PER_PAGE = 50      # the most used first; the audit report lists every message


def first_words(message: Any, n: int = FIRST_WORDS) -> str:
    """The start of a message's text in quotes, or what it is ('an audio file', '3 cards, the first
    titled “…”') when it has none."""
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            return _q(message, n)
    if not isinstance(message, dict):
        return "(not a message)"
    if isinstance(message.get("text"), str) and message["text"].strip():
        return _q(message["text"], n)
    att = message.get("attachment") if isinstance(message.get("attachment"), dict) else {}
    payload = att.get("payload") if isinstance(att.get("payload"), dict) else {}
    if isinstance(payload.get("text"), str) and payload["text"].strip():
        return _q(payload["text"], n)
    elements = payload.get("elements") if isinstance(payload.get("elements"), list) else []
    if elements:
        title = elements[0].get("title") if isinstance(elements[0], dict) else None
        cards = f"{len(elements)} card" + ("" if len(elements) == 1 else "s")
        return f"{cards}, the first titled “{_cut(title, n)}”" if isinstance(title, str) and title else cards
    kind = att.get("type")
    if isinstance(kind, str) and kind:
        return {"audio": "an audio file", "video": "a video", "image": "an image", "file": "a file (document)"}.get(
            kind, f"a {kind} attachment")
    return "(no text)"


def _q(text: str, n: int) -> str:
    return f"“{_cut(text, n)}”"


def _cut(text: str, n: int, chars: int = 90) -> str:
    """The first `n` words, and at most `chars` characters (a 700-character 'word' is cut too)."""
    words = " ".join(text.split()).split(" ")
    out = " ".join(words[:n])
    if len(out) > chars:
        return out[:chars - 1].rstrip() + "…"
    return out + ("…" if len(words) > n else "")


MM = "Marketing Messages"
# converter problem code -> what a business reads (the converter's own wording is partner-facing: it
# names JSON paths and error codes; it stays in `detail` and in the audit report). {a}/{b}: numbers
# read from the detail, when its wording has them (else the sentence without them).
PLAIN: dict[str, str] = {
    "NOT_A_MESSAGE": "The partner's record of this message is not a message that can be sent.",
    "MESSAGE_NOT_JSON": "The partner's copy of this message is damaged and cannot be read.",
    "INVALID_JSON": "The partner's copy of this message is damaged and cannot be read.",
    "ATTACHMENT_TYPE_UNSUPPORTED": f"{MM} cannot carry {{kind}}.",
    "TEMPLATE_UNSUPPORTED": f"This kind of Messenger message has no {MM} form.",
    "CONVERTER_ERROR": "The migration tool could not read this message; the partner will look into it.",
    "INVALID_FIELD": f"Part of the message has a value {MM} do not accept.",
    "REQUIRED_FIELD_MISSING": f"Something {MM} require is missing (such as a title, a text or a link).",
    "UNKNOWN_FIELD": f"The message uses a feature {MM} do not offer.",
    "TEXT_TOO_LONG": "The text is {a} characters long; " + MM + " allow {b}.",
    "LONE_SURROGATE": "The text contains a broken character.",
    "TOO_MANY_LINE_BREAKS": f"The text has more line breaks than {MM} allow.",
    "TITLE_TOO_LONG": f"A card title is longer than {MM} allow.",
    "SUBTITLE_TOO_LONG": f"A card's second line is longer than {MM} allow.",
    "TOO_MANY_ELEMENTS": "It has {a} cards; " + MM + " allow {b}.",
    "TOO_MANY_BUTTONS": "It has {a} buttons; " + MM + " allow {b} in one message.",
    "BUTTON_TYPE_UNSUPPORTED": f"A button does something {MM} do not allow.",
    "BUTTON_TITLE_EMPTY": "A button has no label.",
    "BUTTON_TITLE_TOO_LONG": f"A button label is longer than {MM} allow.",
    "BUTTON_URL_EMPTY": "A button or card has no link.",
    "INVALID_URL": "A link or picture address is not a valid web address{space}.",
    "PAYLOAD_TOO_LONG": f"A button carries more hidden data than {MM} allow.",
    "TOO_MANY_QUICK_REPLIES": f"It offers more quick replies than {MM} allow.",
    "QUICK_REPLY_TITLE_TOO_LONG": f"A quick-reply label is longer than {MM} allow.",
    "QUICK_REPLY_UNSUPPORTED": f"A quick reply is of a kind {MM} do not take.",
    "MEDIA_URL_NOT_FACEBOOK": "A picture or video is stored outside Facebook{host}: it must be uploaded to "
                              "Facebook first.",
    "VIDEO_ID_MISSING": "A video card does not say which video to show.",
    "IMAGE_URL_MISSING": f"A card has no picture, and {MM} cards need one.",
    "MULTI_IMAGE_IN_CAROUSEL": f"A card with several pictures sits among other cards, which {MM} do not allow.",
    "IMAGE_URL_AND_IMAGE_URLS": "A card gives its picture twice, in two different ways.",
    "TOO_MANY_HERO_IMAGES": "A card has more than one main picture.",
    "TOO_MANY_IMAGES": f"A card has more pictures than {MM} allow.",
    "PLACEHOLDER_NOT_ALLOWED": f"It fills in the person's name where {MM} cannot (only in card titles and "
                               "greetings).",
    "UNKNOWN_MACRO": f"It uses a personal detail {MM} cannot fill in (only first, last or full name).",
}
_GENERIC = f"Part of this message cannot be sent on {MM} as it is."
_NUMBERS = {"TEXT_TOO_LONG": r"(\d+) characters.*allows (\d+)", "TOO_MANY_ELEMENTS": r"has (\d+) items.*at most (\d+)",
            "TOO_MANY_BUTTONS": r"(\d+) buttons.*allows (\d+)"}
_WITHOUT_NUMBERS = {"TEXT_TOO_LONG": f"The text is longer than {MM} allow.",
                    "TOO_MANY_ELEMENTS": f"It has more cards than {MM} allow.",
                    "TOO_MANY_BUTTONS": f"It has more buttons than {MM} allow."}
_KINDS = {"audio": "an audio file", "file": "a document", "video": "this video", "image": "this picture"}


def plain(code: str | None, detail: str) -> str:
    """The business sentence for one converter problem (never its JSON paths or error codes)."""
    template = PLAIN.get(code or "")
    if template is None:
        return _GENERIC
    if code in _NUMBERS:
        m = re.search(_NUMBERS[code], detail)
        return template.format(a=m.group(1), b=m.group(2)) if m else _WITHOUT_NUMBERS[code]
    if code == "ATTACHMENT_TYPE_UNSUPPORTED":
        m = re.search(r"type is '([a-z_]+)'", detail)
        kind = m.group(1) if m else ""
        return template.format(kind=_KINDS.get(kind, f"a {kind} attachment" if kind else "this attachment"))
    if code == "INVALID_URL":
        m = re.search(r"'([^']*)'", detail)
        return template.format(space=" (it contains a space)" if m and " " in m.group(1).strip() else "")
    if code == "MEDIA_URL_NOT_FACEBOOK":
        m = re.search(r"'https?://([^/'\s]+)", detail)
        return template.format(host=f" (on {m.group(1)})" if m else "")
    return template


def _why(problems: str | None) -> tuple[list[str], list[str]]:
    """(business sentences, the converter's own details), one line per kind of problem."""
    try:
        items = json.loads(problems or "[]")
    except ValueError:
        return [_GENERIC], [str(problems)[:200]]
    # one line per kind of problem: "11 cards with a bad image URL" reads as one problem, not eleven
    seen: dict[str, list[tuple[str | None, str]]] = {}
    for p in items if isinstance(items, list) else []:
        if isinstance(p, dict) and p.get("detail"):
            code = str(p["code"]) if p.get("code") else None
            seen.setdefault(code or str(p["detail"]), []).append((code, str(p["detail"])))
    why, detail = [], []
    for d in seen.values():
        more = f" (and {len(d) - 1} more like it)" if len(d) > 1 else ""
        sentence = plain(*d[0])
        if sentence not in why:
            why.append(sentence)
        detail.append(d[0][1] + more)
    return why, detail


def _spec_entry(spec: Any, page_id: str, topic: str | None):
    """The plan spec's content entry for (page, topic), most specific first (the planner's order)."""
    if spec is None:
        return None
    entries = list(spec.content)
    for test in (lambda e: e.page_id == page_id and e.topic is not None and e.topic == topic,
                 lambda e: e.page_id == page_id and e.topic is None,
                 lambda e: e.page_id is None and e.topic is not None and e.topic == topic,
                 lambda e: e.page_id is None and e.topic is None):
        for e in entries:
            if test(e):
                return e
    return None


def _plan_says(spec: Any, page_id: str, topic: str | None, planned: set[str] | None) -> str | None:
    """What the latest plan does instead of this message (None: there is no plan)."""
    if planned is not None and page_id not in planned:
        return "This page is not in the migration plan yet: nothing is sent to it."
    if spec is None:
        return None if planned is None else ("The migration plan's spec file cannot be read here, so what it "
                                             "sends instead is not known.")
    e = _spec_entry(spec, page_id, topic)
    if e is None:
        return ("No replacement chosen yet: the plan sends another message of this topic that works on MM, if there "
                "is one; otherwise these subscribers are left out.")
    if e.exclude:
        return "The plan leaves these subscribers out until a replacement is chosen."
    if e.message is not None:
        return f"The plan sends this instead, for the business to approve: {first_words(e.message, 16)}"
    return f"The plan sends another of the page's messages instead (content {e.content})."


def _already_sent(spec: Any, page_id: str, topic: str | None, sent: dict[str, set[str]]) -> bool:
    """The spec's replacement for this message is text Meta already accepted a send of."""
    if spec is None or page_id not in sent:
        return False
    from migrator.report.readmodel import canonical

    e = _spec_entry(spec, page_id, topic)
    return e is not None and e.message is not None and canonical(e.message) in sent[page_id]


def approvals(conn, run_id: int, page: str | None, spec: Any = None, *, planned: set[str] | None = None,
              sent: dict[str, set[str]] | None = None) -> dict[str, tuple[list[ContentApproval], int]]:
    """{page_id: (the most used messages needing approval, how many need it)}, from the audit run's content.

    `planned`: the pages the latest plan sends to (None: no plan); `sent`: per page, the plan's
    messages already accepted by Meta: a message whose replacement is among them is not asked for.
    """
    sql = ("SELECT a.page_id, c.content_hash, c.topic_title, c.message, a.outcome, c.problems, a.uses"
           " FROM audit_contents a JOIN contents c ON c.id = a.content_id"
           " WHERE a.run_id = ? AND a.outcome IN ('needs_edit', 'unsupported') AND a.page_id IS NOT NULL"
           + (" AND a.page_id = ?" if page else "") + " ORDER BY a.page_id, a.uses DESC, c.id")
    out: dict[str, tuple[list[ContentApproval], int]] = {}
    for pid, chash, topic, message, outcome, problems, uses in conn.execute(sql, (run_id, page) if page
                                                                            else (run_id,)):
        if sent and _already_sent(spec, pid, topic, sent):
            continue
        items, n = out.get(pid, ([], 0))
        out[pid] = (items, n + 1)
        if len(items) >= MAX_PER_PAGE:
            continue
        why, detail = _why(problems)
        items.append(ContentApproval(content_hash=chash[:12], topic=topic, first_words=first_words(message),
                                     outcome=outcome, why=why, detail=detail, uses=uses or 0,
                                     plan=_plan_says(spec, pid, topic, planned)))
    return out

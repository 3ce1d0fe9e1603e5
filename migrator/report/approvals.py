"""Which of a page's messages the business must approve, named so a person recognises them.

A page needs content work when some of its RN messages cannot be sent on MM as they are
(`audit_contents.outcome` needs_edit or unsupported). The business is told which ones: the
topic, the first words of the text (or what the message is, for media and cards), every
problem in words, and what the latest plan's spec does about it (a replacement text to
approve, another message, or leaving those subscribers out).
"""

from __future__ import annotations

import json
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


def _why(problems: str | None) -> list[str]:
    try:
        items = json.loads(problems or "[]")
    except ValueError:
        return [str(problems)[:200]]
    # one line per kind of problem: "11 cards with a bad image URL" reads as one problem, not eleven
    seen: dict[str, list[str]] = {}
    for p in items if isinstance(items, list) else []:
        if isinstance(p, dict) and p.get("detail"):
            seen.setdefault(str(p.get("code") or p["detail"]), []).append(str(p["detail"]))
    return [d[0] + (f" (and {len(d) - 1} more like it)" if len(d) > 1 else "") for d in seen.values()]


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


def _plan_says(spec: Any, page_id: str, topic: str | None) -> str | None:
    if spec is None:
        return None
    e = _spec_entry(spec, page_id, topic)
    if e is None:
        return ("The plan spec has no replacement: the plan sends the topic's most used message that converts, "
                "if there is one; otherwise these subscribers are left out.")
    if e.exclude:
        return "The plan leaves these subscribers out (the plan spec excludes this message)."
    if e.message is not None:
        return f"The plan sends this instead, for the business to approve: {first_words(e.message, 16)}"
    return f"The plan sends another of the page's messages instead (content {e.content})."


def approvals(conn, run_id: int, page: str | None, spec: Any = None) -> dict[str, list[ContentApproval]]:
    """{page_id: the messages needing approval}, most used first, from the audit run's content."""
    sql = ("SELECT a.page_id, c.content_hash, c.topic_title, c.message, a.outcome, c.problems, a.uses"
           " FROM audit_contents a JOIN contents c ON c.id = a.content_id"
           " WHERE a.run_id = ? AND a.outcome IN ('needs_edit', 'unsupported') AND a.page_id IS NOT NULL"
           + (" AND a.page_id = ?" if page else "") + " ORDER BY a.page_id, a.uses DESC, c.id")
    out: dict[str, list[ContentApproval]] = {}
    for pid, chash, topic, message, outcome, problems, uses in conn.execute(sql, (run_id, page) if page
                                                                            else (run_id,)):
        items = out.setdefault(pid, [])
        if len(items) >= MAX_PER_PAGE:
            continue
        items.append(ContentApproval(content_hash=chash[:12], topic=topic, first_words=first_words(message),
                                     outcome=outcome, why=_why(problems), uses=uses or 0,
                                     plan=_plan_says(spec, pid, topic)))
    return out

"""Which MM message each (page, topic) of migrate subscribers gets: pure decisions.

Order, most specific first: a spec entry with page_id and topic; the automatic choice (the
most used RN content of that page and topic, ties to the lowest id); a spec entry with
page_id only; with topic only; with neither. Converted content is used when its outcome is
`exact` or `lossy`; content that `needs_edit` (or is `unsupported` / not converted) must be
overridden with `message = {...}` or excluded in the spec, otherwise planning stops and
says which entries to add.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from migrator.convert import validate_mm_message
from migrator.errors import PlanError
from migrator.plan.spec import ContentMap, PlanSpec

SENDABLE = ("exact", "lossy")


@dataclass(frozen=True)
class Content:
    id: int
    content_hash: str
    page_id: str | None
    topic_title: str | None
    key: str | None
    outcome: str | None
    mm_message: str | None
    uses: int


@dataclass(frozen=True)
class Choice:
    """The decision for one (page, topic): a message, or an exclusion reason."""

    message: dict[str, Any] | None
    content_id: int | None
    source: str | None          # converted | override
    outcome: str | None
    excluded: str | None        # content_excluded | no_content


@dataclass(frozen=True)
class Usage:
    """How often one content was used for a page and topic (from content_records)."""

    page_id: str | None
    topic_title: str | None
    key: str | None
    content_id: int
    n: int


def load_contents(conn) -> list[Content]:
    return [Content(*r) for r in conn.execute(
        "SELECT id, content_hash, page_id, topic_title, key, outcome, mm_message, uses "
        "FROM contents ORDER BY id")]


def load_usage(conn) -> list[Usage]:
    """Content is deduplicated across pages, so page/topic/key come from its records."""
    return [Usage(*r) for r in conn.execute(
        "SELECT page_id, topic_title, key, content_id, COUNT(*) FROM content_records "
        "GROUP BY page_id, topic_title, key, content_id ORDER BY content_id")]


def _describe(c: Content) -> str:
    key = f"key {c.key!r}, " if c.key else ""
    return f"content {c.id} ({key}hash {c.content_hash[:12]})"


class ContentResolver:
    """Resolves spec entries once (errors name the entry) and answers per (page, topic)."""

    def __init__(self, spec: PlanSpec, contents: list[Content], *, where: str,
                 usage: list[Usage] | None = None):
        self.where = where
        self.spec = spec
        self.by_id = {c.id: c for c in contents}
        # content without record detail counts where it was first seen
        recorded = {u.content_id for u in usage or ()}
        usage = list(usage or ()) + [Usage(c.page_id, c.topic_title, c.key, c.id, c.uses)
                                     for c in contents if c.id not in recorded]
        self.usage = usage
        counts: dict[tuple[str | None, str | None], dict[int, int]] = {}
        for u in usage:
            per = counts.setdefault((u.page_id, u.topic_title), {})
            per[u.content_id] = per.get(u.content_id, 0) + u.n
        self.auto: dict[tuple[str | None, str | None], Content] = {}
        for k, per in counts.items():
            best = min(per, key=lambda cid: (-per[cid], cid))   # most used, then lowest id
            if best in self.by_id:
                self.auto[k] = self.by_id[best]
        self.errors: list[str] = []
        self.entries: list[tuple[int, ContentMap, Choice]] = []
        for i, e in enumerate(spec.content):
            ch = self._entry_choice(i, e, contents)
            if ch is not None:
                self.entries.append((i, e, ch))
        self.used_entries: set[int] = set()
        if self.errors:
            self.raise_errors()

    def raise_errors(self) -> None:
        raise PlanError("\n".join(dict.fromkeys(self.errors)),
                        hint="override with message = {...} or set exclude = true in a [[content]] "
                             "entry; see docs/plan.md")

    def _find(self, i: int, e: ContentMap, contents: list[Content]) -> Content | None:
        ref = e.content
        key = f"{self.where}: content[{i}].content"
        if isinstance(ref, int):
            c = self.by_id.get(ref)
            if c is None:
                self.errors.append(f"{key}: no content with id {ref} in the workspace "
                                   "(expected a contents.id, a key or a content_hash)")
            return c
        hits = [c for c in contents if c.content_hash == ref]
        if not hits:
            ids = sorted({u.content_id for u in self.usage
                          if u.key == ref and (e.page_id is None or u.page_id == e.page_id)})
            hits = [self.by_id[i] for i in ids if i in self.by_id]
        if not hits:
            self.errors.append(f"{key}: no content with key or content_hash {ref!r}"
                               + (f" on page {e.page_id}" if e.page_id else ""))
            return None
        if len(hits) > 1:
            pages = ", ".join(sorted({str(u.page_id) for u in self.usage if u.key == ref}))
            self.errors.append(f"{key}: {ref!r} names several contents (pages {pages}); add page_id "
                               "or use the content id")
            return None
        return hits[0]

    def _entry_choice(self, i: int, e: ContentMap, contents: list[Content]) -> Choice | None:
        if e.exclude:
            return Choice(None, None, None, None, "content_excluded")
        c = self._find(i, e, contents) if e.content is not None else None
        if e.content is not None and c is None:
            return None
        if e.message is not None:
            problems = validate_mm_message(e.message)
            if problems:
                for p in problems:
                    code = f" (MM error {p.mm_error_code})" if p.mm_error_code else ""
                    self.errors.append(f"{self.where}: content[{i}].message: {p.code}: {p.detail}{code}")
                return None
            return Choice(e.message, c.id if c else None, "override", c.outcome if c else None, None)
        assert c is not None
        if c.outcome not in SENDABLE or not c.mm_message:
            what = "is not converted yet" if c.outcome is None else f"needs work (outcome {c.outcome})"
            self.errors.append(f"{self.where}: content[{i}].content: {_describe(c)} {what}: "
                               "expected message = {...} next to it, or exclude = true")
            return None
        return Choice(json.loads(c.mm_message), c.id, "converted", c.outcome, None)

    def _entry(self, page_id: str, topic: str | None, level: int) -> Choice | None:
        for i, e, ch in self.entries:
            ok = {
                0: e.page_id == page_id and e.topic is not None and e.topic == topic,
                1: e.page_id == page_id and e.topic is None,
                2: e.page_id is None and e.topic is not None and e.topic == topic,
                3: e.page_id is None and e.topic is None,
            }[level]
            if ok:
                self.used_entries.add(i)
                return ch
        return None

    def choose(self, page_id: str, topic: str | None) -> Choice:
        """The message for migrate subscribers of `page_id` with `topic` (None = no topic)."""
        ch = self._entry(page_id, topic, 0)
        if ch is not None:
            return ch
        auto = self.auto.get((page_id, topic))
        if auto is not None and auto.outcome in SENDABLE and auto.mm_message:
            return Choice(json.loads(auto.mm_message), auto.id, "converted", auto.outcome, None)
        for level in (1, 2, 3):
            ch = self._entry(page_id, topic, level)
            if ch is not None:
                return ch
        if auto is not None:
            what = "is not converted yet" if auto.outcome is None else f"needs work (outcome {auto.outcome})"
            self.errors.append(
                f"{self.where}: content: page {page_id} topic {topic!r}: its most used "
                f"{_describe(auto)} {what}: expected a [[content]] entry with page_id = "
                f"\"{page_id}\", topic = {json.dumps(topic) if topic is not None else '(omit)'} and "
                "message = {...} (or exclude = true)")
            return Choice(None, None, None, None, "content_needs_edit")
        return Choice(None, None, None, None, "no_content")

    def unused_entries(self) -> list[int]:
        return [i for i, _, _ in self.entries if i not in self.used_entries]

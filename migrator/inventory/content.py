"""Ingest RN message content: logged Send API bodies or a content library.

Content is deduplicated by a hash of the normalised message (keys sorted, nulls dropped,
so formatting differences in the logs don't make two copies). Each input record is kept in
`content_records` (so re-ingesting a file is a no-op) and linked to the page and topic of
the token it was sent to, when that token is in the workspace.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Iterator

from migrator.errors import InputError
from migrator.inventory.chunks import json_chunks
from migrator.inventory.ingest import Clock, Run, record_failed_run
from migrator.inventory.stage import chunk_json_values
from migrator.inventory.sources import file_sha256, open_text
from migrator.inventory.summary import IngestSummary
from migrator.store import Workspace


def normalize_message(message: Any) -> Any:
    """Drop null values recursively; key order is made canonical when serialised."""
    if isinstance(message, dict):
        return {k: normalize_message(v) for k, v in message.items() if v is not None}
    if isinstance(message, list):
        return [normalize_message(v) for v in message]
    return message


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(message: Any) -> str:
    return hashlib.sha256(canonical_json(normalize_message(message)).encode()).hexdigest()


def classify_record(obj: Any) -> tuple[str, dict]:
    """Return (source, fields) for a content record, or raise ValueError saying why not.

    A `page_id` must be a Page id by the same rule token files follow (plain digits, not zero ...):
    content stored against a page that cannot exist would never be matched to a subscriber."""
    source, fields = _classify(obj)
    if fields.get("page_id") is not None:
        from migrator.inventory.tokens import _page_id

        fields["page_id"] = _page_id(fields["page_id"])
    return source, fields


def _classify(obj: Any) -> tuple[str, dict]:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    msg = obj.get("message")
    if "message" in obj:
        if not isinstance(msg, dict) or not msg:
            raise ValueError("message must be a non-empty object")
        if "text" not in msg and "attachment" not in msg:
            raise ValueError("message has neither text nor attachment")
        recipient = obj.get("recipient")
        if isinstance(recipient, dict):
            token = recipient.get("notification_messages_token") or recipient.get("notification_message_token")
            return "send_api", {"message": msg, "token": _str(token), "page_id": _str(obj.get("page_id")),
                                "topic_title": _str(obj.get("topic_title")), "key": _str(obj.get("key"))}
        return "library", {"message": msg, "token": None, "page_id": _str(obj.get("page_id")),
                           "topic_title": _str(obj.get("topic_title")), "key": _str(obj.get("key"))}
    if "text" in obj or "attachment" in obj:
        return "library", {"message": obj, "token": None, "page_id": None, "topic_title": None, "key": None}
    raise ValueError('not RN content: expected {"recipient", "message"} or {"page_id", "key", "message"}')


def _excerpt(obj: Any) -> str | None:
    if obj is None:
        return None
    try:
        return json.dumps(obj, ensure_ascii=False)[:200]
    except (RecursionError, ValueError, TypeError):
        return "(nested too deep to show)"


def _str(v: Any) -> str | None:
    if v is None or isinstance(v, (dict, list)):
        return None
    s = str(v).strip()
    return s or None


def _json_values(f) -> Iterator[tuple[int, Any, str | None]]:
    """JSON lines, or one JSON document spread over many lines: read as token webhooks are."""
    for chunk in json_chunks(f, "json"):
        yield from chunk_json_values(chunk)


def ingest_content(ws: Workspace, paths, *, strict: bool = False, clock: Clock = time.time,
                   convert: bool = True, encoding: str | None = None) -> IngestSummary:
    """Ingest content files (JSONL, a JSON array or one JSON object; plain or gzip)."""
    summary = IngestSummary()
    conn = ws.conn
    for p in paths:
        path = str(p)
        try:
            with ws.transaction(), open_text(path, encoding=encoding) as f:
                run = Run(ws, kind="content", path=path, fmt="json", sha=file_sha256(path), clock=clock)
                formats = set()
                for lineno, obj, error in _json_values(f):
                    try:
                        if error is not None:
                            raise ValueError(error)
                        source, fields = classify_record(obj)
                    except ValueError as exc:
                        if strict:
                            raise InputError(str(exc), path=path, line=lineno) from None
                        run.reject(lineno, str(exc), _excerpt(obj))
                        continue
                    formats.add(source)
                    run.summary.count("accepted" if _store(conn, run, lineno, obj, source, fields)
                                      else "duplicate")
                run.summary.format = "+".join(sorted(formats)) or None
                conn.execute("UPDATE ingest_runs SET format=? WHERE id=?", (run.summary.format, run.id))
                summary.files.append(run.finish())
        except InputError:
            if strict:
                record_failed_run(ws, kind="content", path=path, fmt="json", clock=clock)
            raise
    if convert:
        _convert_contents(ws)
    return summary


def _store(conn, run: Run, lineno: int, obj: Any, source: str, fields: dict) -> bool:
    message = normalize_message(fields["message"])
    chash = content_hash(message)
    record_key = hashlib.sha256(canonical_json(normalize_message(obj)).encode()).hexdigest()
    if conn.execute("SELECT 1 FROM content_records WHERE record_key=?", (record_key,)).fetchone():
        return False
    page_id, topic = fields["page_id"], fields["topic_title"]
    if fields["token"] and (page_id is None or topic is None):
        row = conn.execute("SELECT page_id, topic_title FROM tokens WHERE token=?", (fields["token"],)).fetchone()
        if row:
            page_id = page_id or row[0]
            topic = topic or row[1]
    conn.execute(
        "INSERT INTO contents (content_hash, page_id, topic_title, key, source, message, uses, first_run)"
        " VALUES (?,?,?,?,?,?,1,?) ON CONFLICT(content_hash) DO UPDATE SET uses = uses + 1,"
        " page_id = coalesce(page_id, excluded.page_id), topic_title = coalesce(topic_title, excluded.topic_title),"
        " key = coalesce(key, excluded.key)",
        (chash, page_id, topic, fields["key"], source, canonical_json(message), run.id))
    content_id = conn.execute("SELECT id FROM contents WHERE content_hash=?", (chash,)).fetchone()[0]
    conn.execute(
        "INSERT INTO content_records (record_key, content_id, token, page_id, topic_title, key, run_id, line)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (record_key, content_id, fields["token"], page_id, topic, fields["key"], run.id, lineno))
    return True


def _convert_contents(ws: Workspace) -> None:
    """Store the MM conversion of every content row so the audit and planner can read it."""
    from migrator.inventory.conversions import convert_workspace_contents

    convert_workspace_contents(ws)

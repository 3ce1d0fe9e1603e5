"""Open input files (plain or gzip) and tell their format from their content.

Detection reads the first bytes, not the file name: gzip by its magic number, then JSON vs
CSV by the first non-blank character, then which JSON shape (webhook delivery, token
listing page or item, content record) by the keys of the first record.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from migrator.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
TOKEN_FORMATS = ("csv", "jsonl", "webhooks")


def open_text(path: str | Path) -> IO[str]:
    """Open `path` for reading text, transparently gunzipping; errors become InputError."""
    p = Path(path)
    try:
        raw = open(p, "rb")
    except FileNotFoundError:
        raise InputError("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if head == GZIP_MAGIC else raw
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Line:
    number: int  # 1-based line number in the (decompressed) file
    text: str


def iter_lines(f: IO[str]) -> Iterator[Line]:
    """Yield non-blank lines with their 1-based line numbers."""
    for n, text in enumerate(f, start=1):
        if text.strip():
            yield Line(n, text)


def _first_record_text(path: str | Path, limit: int = 1 << 16) -> str:
    with open_text(path) as f:
        try:
            return f.read(limit)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"cannot decompress: {exc}", path=str(path)) from None


def detect_token_format(path: str | Path) -> str:
    """Return csv | jsonl | webhooks for a tokens input, by content."""
    head = _first_record_text(path).lstrip("\ufeff \t\r\n")
    if not head:
        return "csv"  # empty file: nothing to ingest, any parser copes
    if head[0] in "[{":
        shape = _json_shape(head)
        if shape == "webhooks":
            return "webhooks"
        if shape in ("listing", "unknown"):
            return "jsonl"
        raise InputError(
            "this looks like message content, not tokens",
            path=str(path), hint="use `migrator ingest content` for RN message content",
        )
    first_line = head.splitlines()[0].lower()
    if "token" in first_line and ("," in first_line or ";" in first_line or "\t" in first_line):
        return "csv"
    raise InputError(
        "cannot tell the format from the content (expected a CSV header with page_id,token, "
        "token-listing JSON lines, or webhook deliveries)",
        path=str(path), hint="pass --format csv|jsonl|webhooks",
    )


def _json_shape(head: str) -> str:
    """Classify the first JSON value found at the start of `head`."""
    first = head.splitlines()[0].strip()
    obj = None
    for candidate in (first, head):
        try:
            obj = json.loads(candidate)
            break
        except ValueError:
            continue
    if obj is None:
        # a truncated multi-line array or a broken first line: look at the keys we can see
        for marker, shape in (('"entry"', "webhooks"), ('"messaging"', "webhooks"),
                              ('"notification_messages_token"', "listing"),
                              ('"message"', "content")):
            if marker in head:
                return shape
        return "unknown"
    if isinstance(obj, list):
        obj = next((o for o in obj if isinstance(o, dict)), None)
    if not isinstance(obj, dict):
        return "unknown"
    if "entry" in obj or obj.get("object") in ("page", "instagram"):
        return "webhooks"
    if "data" in obj or "notification_messages_token" in obj:
        return "listing"
    if "message" in obj:
        return "content"
    return "unknown"

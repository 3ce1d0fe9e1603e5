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
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from migrator.errors import InputError
from migrator.inputs import decode_error, detect_encoding

GZIP_MAGIC = b"\x1f\x8b"
TOKEN_FORMATS = ("csv", "jsonl", "webhooks")
CSV_DELIMITERS = (",", ";", "\t", "|")


class _Hashing(io.RawIOBase):
    """A raw file that feeds every byte it reads to `hasher` (the file's sha256, in one pass)."""

    def __init__(self, f: IO[bytes], hasher) -> None:
        self._f = f
        self._hasher = hasher

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._f.readinto(b)
        if n:
            self._hasher.update(memoryview(b)[:n])
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def open_text(path: str | Path, *, hasher=None, encoding: str | None = None) -> "SafeText":
    """Open `path` for reading text, transparently gunzipping; errors become InputError.

    The encoding is `encoding` when given, else detected from the first bytes (UTF-8 with or
    without BOM, UTF-16 with BOM; see migrator.inputs). Undecodable bytes are never replaced:
    reading them raises InputError with their line and byte offset.
    With `hasher` (a hashlib object), the file's bytes as stored are hashed as they are read.
    """
    p = Path(path)
    try:
        raw = open(p, "rb") if hasher is None else io.BufferedReader(_Hashing(open(p, "rb", buffering=0), hasher), 1 << 16)
    except FileNotFoundError:
        raise InputError("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    head = raw.peek(2)[:2]
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if head == GZIP_MAGIC else raw
    try:
        first = stream.peek(512)[:512]  # type: ignore[union-attr]
        enc = detect_encoding(first, encoding, path=str(path))
    except InputError:
        raw.close()
        raise
    except _READ_ERRORS as exc:
        raw.close()
        raise InputError(f"cannot read: the file is truncated or corrupt ({exc})", path=str(path),
                         hint="re-export or re-download the file") from None
    text = SafeText(io.TextIOWrapper(stream, encoding=enc, errors="strict", newline=""), str(path))
    text.encoding = enc
    return text


def _reopen_bytes(path: str):
    """The file's bytes again, gunzipped (to locate a decoding error)."""
    f = open(path, "rb")
    if f.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f)
    return f


_READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, OSError)


# The longest line any input is read as. No record of any input comes near it (a CSV field is
# capped at 64 KB, a Graph listing page of 100 tokens or a webhook delivery is tens of KB); a
# longer line is one reject, read to its end in pieces and dropped, so one runaway line (a 100 MB
# export glitch) costs bounded memory instead of ten times its size.
MAX_LINE_CHARS = 4 << 20


@dataclass(frozen=True)
class LongLine:
    """A line longer than MAX_LINE_CHARS that was skipped: its length and first characters."""

    length: int
    head: str
    limit: int = MAX_LINE_CHARS

    @property
    def reason(self) -> str:
        return (f"line of {self.length:,} characters, longer than the {self.limit:,} any record can be: "
                "skipped (is it a whole file on one line, or a runaway field?); reading goes on at the next line")


def _ended(line: str) -> bool:
    return line.endswith(("\n", "\r"))


class SafeText:
    """A text stream whose decompression/read failures surface as InputError.

    A truncated or corrupt gzip file is reported as such (and the file's transaction rolls
    back) instead of escaping as a low-level exception. `finish_line` and `lines` never hold
    more than MAX_LINE_CHARS of one line.
    """

    def __init__(self, f: IO[str], path: str, *, max_line: int = MAX_LINE_CHARS):
        self._f = f
        self.path = path
        self.encoding = "utf-8"
        self.max_line = max_line
        self._pending = ""      # a character read past a skipped line's lone CR

    def finish_line(self, partial: str = "") -> "str | LongLine":
        """The rest of the line of which `partial` (no line end in it) was read already, line end
        included ('' at the end of the file); or a LongLine when the whole line is longer than
        `max_line` (MAX_LINE_CHARS): then it is read to its end in bounded pieces and dropped."""
        budget = max(0, self.max_line - len(partial))
        rest = self.readline(budget + 1)
        if rest.endswith("\r"):
            rest += self._crlf()
        if _ended(rest) or len(rest) <= budget:
            return rest
        length, head = len(partial) + len(rest), (partial[:200] + rest[:200])[:200]
        while piece := self.readline(1 << 16):   # to its end, dropped; its length without the line end
            if piece.endswith("\r"):
                length += len(piece) - 1
                self._crlf()
                break
            if piece.endswith("\n"):
                length += len(piece) - (2 if piece.endswith("\r\n") else 1)
                break
            length += len(piece)
        return LongLine(length, head, self.max_line)

    def _crlf(self) -> str:
        """After a CR: the LF of a CRLF ('\\n'), or '' (a character read is kept for the next read)."""
        c = self.read(1)
        if c == "\n":
            return c
        self._pending = c
        return ""

    def lines(self) -> "Iterator[str | LongLine]":
        """The file's lines, each at most `max_line` long, or a LongLine in its place."""
        while True:
            line = self.finish_line()
            if not line:
                return
            yield line

    def _fail(self, exc: Exception) -> InputError:
        return InputError(f"cannot read: the file is truncated or corrupt ({exc})", path=self.path,
                          hint="re-export or re-download the file")

    def _undecodable(self) -> InputError:
        return decode_error(self.path, self.encoding, lambda: _reopen_bytes(self.path))

    def read(self, n: int = -1) -> str:
        if self._pending and n:
            head, self._pending = self._pending, ""
            return head + (self.read(n - 1) if n > 0 else self.read())
        try:
            return self._f.read(n)
        except _READ_ERRORS as exc:
            raise self._fail(exc) from None
        except UnicodeDecodeError:
            raise self._undecodable() from None

    def readline(self, size: int = -1) -> str:
        if self._pending and size:
            head, self._pending = self._pending, ""
            if _ended(head):
                return head + self._crlf() if head == "\r" else head
            return head + self.readline(size - 1 if size > 0 else -1)
        try:
            return self._f.readline(size)
        except _READ_ERRORS as exc:
            raise self._fail(exc) from None
        except UnicodeDecodeError:
            raise self._undecodable() from None

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    def close(self) -> None:
        try:
            self._f.close()
        except (*_READ_ERRORS, UnicodeDecodeError):
            pass

    def __enter__(self) -> "SafeText":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _first_record_text(path: str | Path, limit: int = 1 << 16, encoding: str | None = None) -> str:
    with open_text(path, encoding=encoding) as f:
        return f.read(limit)


def detect_token_format(path: str | Path, encoding: str | None = None) -> str:
    """Return csv | jsonl | webhooks for a tokens input, by content."""
    head = _first_record_text(path, encoding=encoding).lstrip("\ufeff \t\r\n")
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
    if "token" in first_line and any(d in first_line for d in CSV_DELIMITERS):
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
        except (ValueError, RecursionError):  # RecursionError: nested too deep to be a record
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

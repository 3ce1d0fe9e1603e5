"""Cut a token input file into chunks of whole records, each knowing its first line number.

Chunks are what worker processes parse in parallel (stage.py), so a cut must never fall
inside a record:
- JSON lines: any line end;
- CSV: after a record as csv.reader reads it (only for text holding a quote character:
  otherwise every line end is a record end), so a quoted field holding a newline stays
  whole and a stray quote in an unquoted field (`55" TV`) is plain text, as csv takes it;
- a JSON file (webhooks, content) that is one document spread over many lines (a
  pretty-printed array) is one chunk.
Line numbers count line ends as reading with `newline=""` does (\\n, \\r\\n or a lone \\r).
A line longer than sources.MAX_LINE_CHARS is never held whole: it becomes a LONG_LINE chunk
(one reject) and reading goes on at the next line.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Iterator

from migrator.errors import InputError
from migrator.inventory.sources import LongLine, SafeText
from migrator.inventory.stage import LONG_LINE, Chunk
from migrator.inventory.tokens import CsvLayout, set_field_limit

CHUNK_CHARS = 4 << 20  # about 28,000 CSV rows or 9,000 webhook deliveries


def iter_chunks(f: SafeText, fmt: str, *, path: str, page_id: str | None = None,
                chunk_chars: int = CHUNK_CHARS, delimiter: str | None = None) -> Iterator[Chunk]:
    """Chunks of `f` for `fmt` (csv | jsonl | webhooks); a CSV's delimiter is `delimiter`,
    or the one its header line uses."""
    if fmt == "csv":
        layout, first_line = _csv_header(f, path, delimiter)
        if layout is None:
            return
        for text in _csv_blocks(f, chunk_chars, layout.delimiter):
            yield _long_line(text, first_line) if isinstance(text, LongLine) else \
                Chunk("csv", text, first_line, csv_layout=layout)
            first_line += 1 if isinstance(text, LongLine) else count_lines(text)
        return
    if fmt == "webhooks":
        yield from json_chunks(f, fmt, chunk_chars=chunk_chars)
        return
    yield from _line_chunks(f, fmt, chunk_chars, 1, page_id=page_id)


def _long_line(long: LongLine, line: int) -> Chunk:
    """One reject for a line too long to read (its reason in `text`, its start as excerpt)."""
    return Chunk(LONG_LINE, long.reason, line, excerpt=long.head)


def _line_chunks(f: SafeText, fmt: str, chunk_chars: int, first_line: int, *, head: str = "",
                 page_id: str | None = None) -> Iterator[Chunk]:
    for text in _blocks(f, chunk_chars, head=head):
        if isinstance(text, LongLine):
            yield _long_line(text, first_line)
            first_line += 1
        elif text:
            yield Chunk(fmt, text, first_line, page_id=page_id)
            first_line += count_lines(text)


def json_chunks(f: SafeText, fmt: str, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[Chunk]:
    """JSON lines in chunks of `fmt`; or, when the file is one JSON value spread over many
    lines (a pretty-printed array), the whole file as one "json-document" chunk."""
    head = ""  # blank lines, then the first line: is it a whole JSON value?
    while (line := f.finish_line()) and not isinstance(line, LongLine) and not line.strip():
        head += line
    if isinstance(line, LongLine):
        first_line = 1 + count_lines(head)
        yield _long_line(line, first_line)
        yield from _line_chunks(f, fmt, chunk_chars, first_line + 1)
        return
    head += line
    if _is_multiline_document(head):
        yield Chunk("json-document", head + f.read(), 1)
        return
    yield from _line_chunks(f, fmt, chunk_chars, 1, head=head)


def count_lines(text: str) -> int:
    """Lines as `newline=""` reading splits them (\\n, \\r\\n and a lone \\r)."""
    n = text.count("\n")  # one pass when the text has no CR (`in` is a fast memchr)
    return n + text.count("\r") - text.count("\r\n") if "\r" in text else n


def _csv_header(f: SafeText, path: str, delimiter: str | None = None) -> tuple[CsvLayout | None, int]:
    """Read up to the header row (blank lines before it are skipped); check required columns."""
    number = 0
    while True:
        line = f.finish_line()
        if not line:
            return None, number + 1
        number += 1
        if isinstance(line, LongLine):
            raise InputError(f"the first line is {line.length:,} characters long: not a CSV header", path=path,
                             line=number, hint="the first row must name the columns (page_id, token, ...)")
        layout = CsvLayout.from_line(line, delimiter)
        if any(layout.header):
            break
    dupes = sorted({c for c in layout.header if c and layout.header.count(c) > 1})
    if dupes:
        raise InputError(
            f"CSV header names column(s) {', '.join(dupes)} more than once: which one holds the value "
            "is ambiguous", path=path, line=number,
            hint="remove or rename the extra column (a spreadsheet may have added it) and ingest again")
    if layout.missing:
        raise InputError(
            f"CSV header lacks required column(s) {', '.join(layout.missing)} "
            f"(found: {', '.join(layout.header)[:200]}; read with delimiter {layout.delimiter!r})",
            path=path, line=number,
            hint="the first row must name the columns; page_id and token are required "
                 "(pass --delimiter if the columns are not separated by , ; TAB or |)",
        )
    return layout, number + 1


def _line_start(block: str) -> int:
    """Where the last (unfinished) line of `block` starts."""
    return max(block.rfind("\n"), block.rfind("\r")) + 1


def _blocks(f: SafeText, size: int, *, head: str = "") -> Iterator[str | LongLine]:
    """About `size` characters at a time, cut at a line end; a line too long to read is a
    LongLine in its place (the whole lines before it come first)."""
    while True:
        block = head + f.read(max(0, size - len(head)))
        head = ""
        if not block:
            return
        start = _line_start(block)
        rest = f.finish_line(block[start:])  # finish the line the read stopped in
        if isinstance(rest, LongLine):
            yield block[:start]
            yield rest
        else:
            yield block + rest


def _csv_blocks(f: SafeText, size: int, delimiter: str = ",") -> Iterator[str | LongLine]:
    """Like _blocks, cut after a whole CSV record as `csv` itself reads it.

    Text without a quote character can be cut at any line end. Otherwise csv.reader finds
    the last record the block completes (a quote opens a field only at the field's start,
    so `55" TV` is plain text); the rest is carried into the next block. A block with no
    whole record in it (a quoted field longer than the block, an unclosed quote) grows up to
    four times `size`, and is then handed over as it is: the parser reports what it holds.
    """
    carry = ""
    while True:
        block = f.read(size)
        if not block:
            if carry:
                yield carry
            return
        start = _line_start(block)
        rest = f.finish_line(block[start:])
        if isinstance(rest, LongLine):   # whole lines before it as they are (the parser says what they hold)
            if carry or start:
                yield carry + block[:start]
            carry = ""
            yield rest
            continue
        text = carry + block + rest
        carry = ""
        if '"' not in text:
            yield text
            continue
        cut = _last_record_end(text, delimiter)
        if cut == 0 and len(text) < 4 * size:
            carry = text
            continue
        cut = cut or len(text)
        carry = text[cut:]
        yield text[:cut]


def _last_record_end(text: str, delimiter: str = ",") -> int:
    """Offset just after the last record of `text` that csv.reader reads as complete, or 0."""
    pos = 0
    exhausted = False

    def lines() -> Iterator[str]:
        nonlocal pos, exhausted
        for line in io.StringIO(text, newline=""):
            pos += len(line)
            yield line
        exhausted = True

    end = 0
    try:
        set_field_limit()
        for _ in csv.reader(lines(), delimiter=delimiter):
            if exhausted:  # this record was ended by the end of the text, not by a line end
                break
            end = pos
    except csv.Error:  # e.g. an unclosed quote running past the field size limit
        pass
    return end


def _is_multiline_document(head: str) -> bool:
    """True when the file starts with a JSON value whose first line is not a whole value."""
    stripped = head.lstrip("\ufeff \t\r\n")
    if stripped[:1] not in ("[", "{"):
        return False
    first = stripped.splitlines()[0] if stripped else ""
    try:
        json.loads(first)
    except (ValueError, RecursionError):
        return True
    return False

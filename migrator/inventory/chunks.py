"""Cut a token input file into chunks of whole records, each knowing its first line number.

Chunks are what worker processes parse in parallel (stage.py), so a cut must never fall
inside a record:
- JSON lines: any line end;
- CSV: a line end where the number of quote characters read so far is even, so a quoted
  field holding a newline stays whole (RFC 4180 quotes are paired: a literal quote inside
  a quoted field is doubled). A stray quote in an unquoted field (`55" TV`) makes the count
  odd; the chunk then grows line by line, and is cut at the next line end regardless once it
  is twice the target size, so memory stays bounded whatever the file holds;
- a webhook file that is one JSON document spread over many lines (a pretty-printed array)
  is one chunk.
Line numbers count line ends as reading with `newline=""` does (\\n, \\r\\n or a lone \\r).
"""

from __future__ import annotations

import json
from typing import Iterator

from migrator.errors import InputError
from migrator.inventory.sources import SafeText
from migrator.inventory.stage import Chunk, count_lines
from migrator.inventory.tokens import CsvLayout

CHUNK_CHARS = 4 << 20  # about 28,000 CSV rows or 9,000 webhook deliveries


def iter_chunks(f: SafeText, fmt: str, *, path: str, page_id: str | None = None,
                chunk_chars: int = CHUNK_CHARS) -> Iterator[Chunk]:
    """Chunks of `f` for `fmt` (csv | jsonl | webhooks)."""
    if fmt == "csv":
        layout, first_line = _csv_header(f, path)
        if layout is None:
            return
        for text in _blocks(f, chunk_chars, quotes=True):
            yield Chunk("csv", text, first_line, csv_layout=layout)
            first_line += count_lines(text)
        return
    first_line = 1
    if fmt == "webhooks":
        head = f.read(min(chunk_chars, 1 << 16))
        if is_multiline_document(head):
            yield Chunk("webhooks-document", head + f.read(), 1)
            return
        head += f.readline()
        blocks = _blocks(f, chunk_chars, quotes=False, head=head)
    else:
        blocks = _blocks(f, chunk_chars, quotes=False)
    for text in blocks:
        yield Chunk(fmt, text, first_line, page_id=page_id)
        first_line += count_lines(text)


def _csv_header(f: SafeText, path: str) -> tuple[CsvLayout | None, int]:
    """Read up to the header row (blank lines before it are skipped); check required columns."""
    number = 0
    while True:
        line = f.readline()
        if not line:
            return None, number + 1
        number += 1
        layout = CsvLayout.from_line(line)
        if any(layout.header):
            break
    if layout.missing:
        raise InputError(
            f"CSV header lacks required column(s) {', '.join(layout.missing)} "
            f"(found: {', '.join(layout.header)[:200]})",
            path=path, line=number,
            hint="the first row must name the columns; page_id and token are required",
        )
    return layout, number + 1


def _blocks(f: SafeText, size: int, *, quotes: bool, head: str = "") -> Iterator[str]:
    while True:
        block = head or f.read(size)
        head = ""
        if not block:
            return
        parts = [block, f.readline()]  # finish the line the read stopped in
        if quotes:
            odd = (block.count('"') + parts[1].count('"')) % 2
            grown = 0
            while odd and grown < size:
                line = f.readline()
                if not line:
                    break
                parts.append(line)
                grown += len(line)
                odd ^= line.count('"') % 2
        yield "".join(parts)


def is_multiline_document(head: str) -> bool:
    """True when the file starts with a JSON value whose first line is not a whole value."""
    stripped = head.lstrip("\ufeff \t\r\n")
    if stripped[:1] not in ("[", "{"):
        return False
    first = stripped.splitlines()[0] if stripped else ""
    try:
        json.loads(first)
    except ValueError:
        return True
    return False

"""`migrator convert FILE`: convert the messages of one file, no workspace needed.

FILE holds one JSON value (a body, a message, or an array of them) or JSON Lines. JSON Lines
are read line by line (memory stays flat on big logs); a malformed line becomes an
`unsupported` result naming its line, and the other lines are still converted.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any, Iterable, Iterator, TextIO

from pydantic import BaseModel, Field

from migrator.convert.convert import convert_message
from migrator.convert.model import OUTCOMES, ConversionResult, ConvertPolicy, problem
from migrator.errors import InputError


class FileResult(ConversionResult):
    """One converted record of the file (index counts every record, malformed ones too)."""

    index: int
    line: int | None = None

    @classmethod
    def of(cls, index: int, line: int | None, result: ConversionResult) -> "FileResult":
        return cls(index=index, line=line, **dict(result))

    def to_json(self) -> dict:
        """Where the record stands first (index, line), then its conversion."""
        return {"index": self.index, "line": self.line,
                **self.model_dump(mode="json", exclude={"index", "line"})}


class FileConversion(BaseModel):
    path: str
    results: list[FileResult] = Field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = {o: 0 for o in OUTCOMES}
        for r in self.results:
            counts[r.outcome] += 1
        return counts

    def to_json(self) -> dict:
        return {"results": [r.to_json() for r in self.results], "counts": self.counts}


def iter_values(f: TextIO) -> Iterator[tuple[int | None, Any, str | None]]:
    """(line, value, error) for each JSON record: JSON Lines, or one document (array expanded)."""
    first = ""
    first_no = 0
    for raw in f:
        first_no += 1
        if raw.strip():
            first = raw
            break
    if not first:
        return
    try:
        value = _loads(first)
    except ValueError:
        rest = f.read()
        doc = first + rest
        try:
            value = _loads(doc)
        except ValueError as exc:
            yield from _lines_after_failed_document(first_no, doc, exc)
            return
        items = value if isinstance(value, list) else [value]
        for item in items:
            yield (first_no if len(items) == 1 else None), item, None
        return
    yield from _expand(first_no, value)
    yield from _records(_json_lines(f, first_no + 1))


def _loads(text: str) -> Any:
    """json.loads, with nesting too deep for Python's parser reported as a JSON error."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def _json_lines(lines: Iterable[str], first_no: int) -> Iterator[tuple[int, Any, str | None]]:
    """(line, value, error) for each non-blank line, numbered from `first_no`; an array stays one value."""
    for lineno, raw in enumerate(lines, start=first_no):
        if not raw.strip():
            continue
        try:
            value = _loads(raw)
        except ValueError as exc:
            yield lineno, None, f"line {lineno} is not valid JSON: {exc.msg} (column {exc.colno})"
            continue
        yield lineno, value, None


def _records(parsed: Iterable[tuple[int, Any, str | None]]) -> Iterator[tuple[int | None, Any, str | None]]:
    """The records of parsed lines: an array line gives one record per item."""
    for lineno, value, error in parsed:
        if error is not None:
            yield lineno, None, error
        else:
            yield from _expand(lineno, value)


def _expand(lineno: int, value: Any) -> Iterator[tuple[int | None, Any, str | None]]:
    if isinstance(value, list):
        for item in value:
            yield lineno, item, None
    else:
        yield lineno, value, None


def _lines_after_failed_document(first_no: int, doc: str, doc_error: ValueError):
    """Not one document: JSON Lines with bad lines, or one broken document (one error)."""
    parsed = list(_json_lines(io.StringIO(doc), first_no))
    if any(error is None for _, _, error in parsed):
        yield from _records(parsed)
    else:
        line = first_no - 1 + getattr(doc_error, "lineno", 1)
        yield line, None, f"the file is not valid JSON or JSON Lines: {getattr(doc_error, 'msg', doc_error)} " \
                          f"(line {line})"


def convert_file(path: str, policy: ConvertPolicy | None = None, *,
                 limits=None, encoding: str | None = None) -> FileConversion:
    """Convert every record of `path` ("-" reads stdin); `limits` from the rules in force.

    Text is decoded as every input is (migrator.inputs): UTF-8 / UTF-16 detected or
    `encoding`, never by replacement; an undecodable byte is an InputError with its line.
    """
    from migrator.inputs import decode_bytes, read_text

    result = FileConversion(path=path)
    if path == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        text = decode_bytes(data, path="<stdin>", encoding=encoding)
    else:
        text = read_text(path, encoding=encoding)
    _convert_stream(io.StringIO(text), result, policy, limits)
    if not result.results:
        raise InputError("no messages in the file", path=path,
                         hint="give one Send API body or message, a JSON array of them, or JSON Lines")
    return result


def _convert_stream(f: TextIO, out: FileConversion, policy: ConvertPolicy | None, limits=None) -> None:
    from migrator.inputs import LONE_SURROGATE, has_lone_surrogate

    for index, (line, value, error) in enumerate(iter_values(f)):
        if error is None and has_lone_surrogate(value):
            # a broken character in a message is content to edit (the validator says where:
            # LONE_SURROGATE, needs_edit); anywhere else in the record it is not text at all
            try:
                r = convert_message(value, policy, limits=limits)
            except (RecursionError, UnicodeError, ValueError):
                r = None
            if r is not None and r.outcome == "needs_edit":
                out.results.append(FileResult.of(index, line, r))
                continue
            error = f"record {LONE_SURROGATE}"
        if error is not None:
            r = _unreadable(error)
        else:
            try:
                r = convert_message(value, policy, limits=limits)
            except RecursionError:
                r = _unreadable("the message is nested too deeply")
        out.results.append(FileResult.of(index, line, r))


def _unreadable(detail: str) -> ConversionResult:
    """A record that could not be read as a message at all (INVALID_JSON, unsupported)."""
    return ConversionResult(outcome="unsupported", message=None, problems=[problem("INVALID_JSON", detail)])

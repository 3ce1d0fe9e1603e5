"""Decode input files honestly: detect UTF-8 / UTF-16 by content, never replace silently.

Every file migrator reads (ingest inputs, `convert`, plan specs, `--rules`, fault profiles,
token files) goes through here. Rules, as a careful data tool applies them:
- a UTF-8 BOM means UTF-8 (Excel "CSV UTF-8"), a UTF-16 BOM means UTF-16 (Excel "Unicode
  text"); otherwise the file must be UTF-8;
- `--encoding NAME` overrides the detection (a BOM of that encoding is still removed);
- bytes that do not decode are refused with the line and byte offset of the first one and
  the fix (`--encoding cp1252` for a Windows export), never replaced by U+FFFD: a replaced
  letter would be classified as exact content and sent to customers.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
from pathlib import Path
from typing import IO

import click

from migrator.errors import InputError

UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
ENCODING_HINT = ("pass the file's encoding, e.g. --encoding cp1252 for an Excel 'CSV (Windows)' "
                 "export or --encoding latin-1, or save the file as UTF-8")


def canonical_encoding(name: str) -> str:
    """The codec name for `name`; raises LookupError when Python does not know it."""
    return codecs.lookup(name).name


def encoding_option(fn):
    """`--encoding NAME` for every command that reads a file (validated: exit 2 if unknown)."""

    def _check(ctx, param, value):
        if value is None:
            return None
        try:
            canonical_encoding(value)
        except LookupError:
            raise click.BadParameter(f"unknown encoding {value!r} (e.g. utf-8, cp1252, latin-1, "
                                     "utf-16)") from None
        return value

    return click.option("--encoding", "encoding", metavar="NAME", callback=_check, default=None,
                        help="Text encoding of the input file(s) [default: detect UTF-8 or "
                             "UTF-16 by BOM, else UTF-8]; e.g. cp1252 for Excel 'CSV (Windows)'.")(fn)


def detect_encoding(head: bytes, explicit: str | None = None, *, path: str | None = None) -> str:
    """The codec to decode a file whose first bytes are `head` with.

    UTF-8 with a BOM becomes utf-8-sig (the BOM is not data); a UTF-16 BOM, utf-16. Text
    with NUL bytes in every other position and no BOM is UTF-16 that lost its BOM: refused
    rather than read as UTF-8 full of NULs.
    """
    if explicit:
        name = canonical_encoding(explicit)
        if name == "utf-8":
            return "utf-8-sig"  # an Excel BOM is never data
        return name
    if head.startswith(UTF8_BOM):
        return "utf-8-sig"
    if head[:2] in UTF16_BOMS:
        return "utf-16"
    sample = head[:512]
    if len(sample) >= 4 and (sample[1::2].count(0) > len(sample) // 4 or sample[0::2].count(0) > len(sample) // 4):
        raise InputError("looks like UTF-16 text without a byte order mark", path=path,
                         hint="pass --encoding utf-16-le (or utf-16-be)")
    return "utf-8"


def locate_decode_error(raw: IO[bytes], encoding: str) -> tuple[int, int, bytes] | None:
    """(line, byte offset, the bytes) of the first undecodable sequence of `raw`, or None.

    Only run after decoding failed (the error path), so it may read the file again.
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0  # bytes fed to the decoder so far
    newlines = 0  # line ends in the text decoded so far
    while True:
        block = raw.read(1 << 16)
        pending = len(decoder.getstate()[0])  # bytes of an unfinished character, kept back
        try:
            text = decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            good = exc.object[:exc.start]
            try:
                newlines += codecs.decode(good, encoding).count("\n")
            except UnicodeDecodeError:
                newlines += bytes(good).count(b"\n")
            return newlines + 1, offset - pending + exc.start, bytes(exc.object[exc.start:exc.end])
        newlines += text.count("\n")
        offset += len(block)
        if not block:
            return None


def decode_error(path: str, encoding: str, opener) -> InputError:
    """The InputError for a file that does not decode as `encoding` (opener() -> raw bytes)."""
    where = None
    try:
        with opener() as raw:
            where = locate_decode_error(raw, encoding)
    except (OSError, EOFError, gzip.BadGzipFile):
        pass
    label = {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "utf-16": "UTF-16"}.get(encoding, encoding)
    if where is None:
        return InputError(f"not {label} text", path=path, hint=ENCODING_HINT)
    line, offset, bad = where
    return InputError(f"not {label} text: byte{'s' if len(bad) > 1 else ''} {bad.hex(' ')} at byte "
                      f"offset {offset} cannot be decoded", path=path, line=line, hint=ENCODING_HINT)


def decode_bytes(data: bytes, *, path: str, encoding: str | None = None) -> str:
    """Decode a whole small file (spec, rules, fault profile, token file, convert input)."""
    enc = detect_encoding(data[:4096], encoding, path=path)
    try:
        return data.decode(enc)
    except UnicodeDecodeError:
        raise decode_error(path, enc, lambda: io.BytesIO(data)) from None


def read_text(path: str | Path, *, encoding: str | None = None, what: str = "file") -> str:
    """Read a whole text file, detected or given encoding; errors are InputError, one line."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found", path=str(p)) from None
    except IsADirectoryError:
        raise InputError(f"is a directory, expected a {what}", path=str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {exc.strerror}", path=str(p)) from None
    return decode_bytes(data, path=str(p), encoding=encoding)


_SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F][0-9a-fA-F]{2}")
LONE_SURROGATE = ("holds a lone UTF-16 surrogate (a \\udXXX escape without its pair): not text; "
                  "fix the record where it was exported")


def may_hold_surrogates(json_text: str) -> bool:
    """Cheap pre-check: could `json.loads(json_text)` give strings with lone surrogates?"""
    return _SURROGATE_ESCAPE.search(json_text) is not None


def has_lone_surrogate(value) -> bool:
    """True when a parsed JSON value holds a string that is not valid Unicode text (it would
    fail later, when written to SQLite or printed, and lose the whole batch)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (RecursionError, ValueError, TypeError):
        return False
    return False

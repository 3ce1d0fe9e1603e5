"""Every file the reports write goes through here, and from here through migrator.outputs (the
shared safe-output helper): atomic (mkstemp in the target folder, renamed
over the target), never over the workspace or a file migrator did not write unless `force`;
CSV cells guarded against spreadsheet formulas and bidirectional-text controls.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path
from typing import Any, Iterable

# a spreadsheet runs a cell starting with one of these as a formula (CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# bidirectional controls (Trojan Source, CVE-2021-42574) and other invisible format characters
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def output_dir(path: str | Path) -> Path:
    """A directory to write several files into: created if missing; a file there is refused."""
    from migrator.report.common import ReportError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ReportError(f"{p} is not a directory", hint="give -o a directory (it is created if missing)")
    p.mkdir(parents=True, exist_ok=True)
    return p


def write_text(path: str | Path, text: str, *, force: bool = False, workspace=None) -> Path:
    """Write `text` to `path` atomically (UTF-8); the parent directory is created."""
    from migrator.outputs import write_text_safely

    return write_text_safely(path, text, force=force, workspace=workspace)


def csv_cell(v: Any) -> Any:
    """A value safe in a spreadsheet: bidi controls removed, a formula start neutralised with '."""
    if not isinstance(v, str):
        return v
    v = _BIDI.sub("", v)
    v = "".join(ch for ch in v if unicodedata.category(ch) != "Cc" or ch in "\t\n\r")
    if v[:1] in FORMULA_START:
        return "'" + v
    return v


def csv_text(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """A CSV document (header + rows, every cell guarded) as text."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    for row in rows:
        w.writerow([csv_cell(x) for x in row])
    return out.getvalue()


def write_csv(path: str | Path, header: list[str], rows: Iterable[Iterable[Any]], *,
              force: bool = False, workspace=None) -> int:
    """Stream rows to a CSV file atomically (every cell guarded); returns the number of rows.

    An existing file with the same header line is taken as an earlier export of ours."""
    from migrator.outputs import safe_output

    first = ",".join(header).encode("utf-8")
    n = 0
    with safe_output(path, force=force, workspace=workspace, first_line=first, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for row in rows:
            w.writerow([csv_cell(x) for x in row])
            n += 1
    return n

"""Every file migrator writes goes through here: never clobbered, always atomic.

Rules, as careful tools apply them:
- never write over the workspace or a file the command reads (its inputs), even with
  `--force`: that would destroy what the output is made from;
- never write over a file migrator did not write (told by its first bytes: our HTML's
  generator tag, our JSON's format key, or the same header line for a CSV) unless `force`;
- a directory, or a path whose folder is missing and cannot be made, is a clear error;
- write to a temp file made by `tempfile.mkstemp` in the target's folder (O_EXCL, a random
  name: a symlink planted at a predictable `<out>.tmp` is never followed), then
  `os.replace` it over the target (a symlink at the target is replaced, not followed); on
  any error the temp file is removed.

Use `write_text_safely(path, text, force=..., reads=[...], workspace=...)` for a whole text,
`safe_output(...)` (a context manager yielding a file) for a stream.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

from migrator.errors import MigratorError

# first bytes that say "migrator wrote this"
OURS = (b'<meta name="generator" content="migrator', b'"format": "migrator-', b'"format":"migrator-',
        b'"migrator_version"', b"# written by migrator")
_HEAD = 4096


class OutputError(MigratorError):
    """An output path that migrator refuses to write (says why and what to do)."""


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(_HEAD)
    except OSError:
        return b""


def is_ours(path: Path, first_line: bytes | None = None) -> bool:
    """True when `path` looks written by migrator (or is empty)."""
    head = _head(path)
    if not head:
        return True
    if any(m in head for m in OURS):
        return True
    return first_line is not None and head.split(b"\n", 1)[0].rstrip(b"\r") == first_line.rstrip(b"\r")


def check_output(path: str | os.PathLike, *, force: bool = False,
                 reads: Iterable[str | os.PathLike | None] = (),
                 workspace: str | os.PathLike | None = None, first_line: bytes | None = None) -> Path:
    """Refuse an output path before anything is computed or written; returns it as a Path.

    Call it early (fail before a long build) and it is called again at the moment of writing.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p} is a directory", hint="give a file name, e.g. -o report.html")
    protected = [(Path(workspace), "the workspace")] if workspace is not None else []
    for r in reads:
        if r is not None and str(r) != "-":
            protected.append((Path(r), "an input of this command"))
    for q, what in protected:
        sidecars = ("-wal", "-shm", "-journal") if what == "the workspace" else ()
        for n in [q, *(Path(str(q) + s) for s in sidecars)]:
            if os.path.abspath(p) == os.path.abspath(n) or (p.exists() and n.exists() and _same(p, n)):
                raise OutputError(f"refusing to write over {p}: it is {what}",
                                  hint="write the output to another path")
    if p.is_symlink() or p.exists():
        try:
            st = p.lstat()
        except OSError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
            raise OutputError(f"refusing to write over {p}: not a regular file",
                              hint="write the output to another path")
        if not force and not is_ours(p, first_line):
            raise OutputError(f"refusing to write over {p}: migrator did not write it",
                              hint="choose another path, or pass --force to replace it")
    return p


@contextlib.contextmanager
def safe_output(path: str | os.PathLike, *, force: bool = False,
                reads: Iterable[str | os.PathLike | None] = (),
                workspace: str | os.PathLike | None = None, first_line: bytes | None = None,
                binary: bool = False, newline: str | None = None, mode: int = 0o644) -> Iterator[IO]:
    """A file object for writing `path` atomically (see the module docstring)."""
    reads = list(reads)
    p = check_output(path, force=force, reads=reads, workspace=workspace, first_line=first_line)
    folder = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {folder}: {exc.strerror}") from None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {exc.strerror}") from None
    try:
        os.fchmod(fd, mode & ~_umask())
        f = os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8",
                                                                          "newline": newline}))
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # the decision is re-checked at the moment of the side effect
        check_output(p, force=force, reads=reads, workspace=workspace, first_line=first_line)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def first_line_of(text: str) -> bytes:
    return text.split("\n", 1)[0].encode("utf-8", "surrogatepass")


def write_text_safely(path: str | os.PathLike, text: str, *, force: bool = False,
                      reads: Iterable[str | os.PathLike | None] = (),
                      workspace: str | os.PathLike | None = None, mode: int = 0o644) -> Path:
    """Write `text` to `path` atomically, refusing to clobber (see the module docstring).

    A CSV (or any text) that has no marker of ours counts as ours when its first line is the
    first line of `text` (the same export written again).
    """
    first = first_line_of(text)
    try:
        with safe_output(path, force=force, reads=reads, workspace=workspace, first_line=first,
                         mode=mode) as f:
            f.write(text)
    except UnicodeEncodeError as exc:
        raise OutputError(f"cannot write {path}: the text holds a lone surrogate ({exc.reason})") from None
    return Path(path)


# --- text a person reads: bidi controls (CSV cells: report/output.csv_cell) ---
#
# U+202E (right-to-left override) and its kin reorder everything after them on the line:
# a page named "\u202etxt.exe" shows as "exe.txt". Explicit embedding, override and isolate
# controls are never needed in a page name, title or message, so they are shown as a visible
# code ([U+202E]) wherever migrator shows user text; right-to-left text itself is kept and
# isolated (<bdi> / unicode-bidi: isolate) so it cannot reorder the text around it. The
# marks LRM, RLM and ALM are kept: right-to-left writing uses them legitimately.

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BIDI_TABLE = {ord(c): f"[U+{ord(c):04X}]" for c in BIDI_CONTROLS}


def neutralize_bidi(text: str) -> str:
    """`text` with every explicit bidi embedding/override/isolate control made visible."""
    if text.isascii():
        return text
    return text.translate(_BIDI_TABLE)

"""Ingest token inputs into the workspace: one transaction per file, every record counted.

A file is applied in one transaction: an ingest killed halfway leaves the workspace as it
was before that file; `--strict` rolls the file back at its first bad record. Rejected
records are kept in `rejects` with file, line and reason; the file's counts in `ingest_runs`.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from migrator.errors import InputError
from migrator.inventory.sources import (
    TOKEN_FORMATS, Line, detect_token_format, file_sha256, iter_lines, open_text,
)
from migrator.inventory.summary import FileSummary, IngestSummary
from migrator.inventory.tokens import (
    Parsed, iter_json_values, listing_item_to_obs, BadValue, parse_csv, parse_listing,
    parse_webhooks,
)
from migrator.inventory.writer import TokenWriter
from migrator.store import Workspace

Clock = Callable[[], float]
ProgressHook = Callable[[int], None]


class Run:
    """An ingest_runs row plus the rejects of one input, inside the file's transaction."""

    def __init__(self, ws: Workspace, *, kind: str, path: str, fmt: str | None, sha: str | None,
                 clock: Clock):
        self.conn = ws.conn
        self.clock = clock
        self.summary = FileSummary(path=path, format=fmt)
        self._rejects: list[tuple] = []
        cur = self.conn.execute(
            "INSERT INTO ingest_runs (kind, path, file_sha256, format, started_at) VALUES (?,?,?,?,?)",
            (kind, path, sha, fmt, int(clock())))
        self.id = cur.lastrowid
        self.summary.run_id = self.id

    def reject(self, line: int | None, reason: str, excerpt: str | None = None) -> None:
        self.summary.count("rejected")
        self._rejects.append((self.id, self.summary.path, line, reason, excerpt))
        if len(self.summary.first_rejects) < 20:
            self.summary.first_rejects.append({"line": line, "reason": reason})
        if len(self._rejects) >= 1000:
            self._flush_rejects()

    def _flush_rejects(self) -> None:
        if self._rejects:
            self.conn.executemany(
                "INSERT INTO rejects (run_id, path, line, reason, excerpt) VALUES (?,?,?,?,?)",
                self._rejects)
            self._rejects.clear()

    def finish(self) -> FileSummary:
        self._flush_rejects()
        s = self.summary
        self.conn.execute(
            "UPDATE ingest_runs SET finished_at=?, records=?, accepted=?, duplicates=?, ignored=?,"
            " rejected=? WHERE id=?",
            (int(self.clock()), s.records, s.accepted, s.duplicates, s.ignored, s.rejected, self.id))
        return s


def record_failed_run(ws: Workspace, *, kind: str, path: str, fmt: str | None, clock: Clock) -> None:
    """Leave a trace of a file that strict mode refused (its records were not written)."""
    now = int(clock())
    with transaction(ws):
        ws.conn.execute(
            "INSERT INTO ingest_runs (kind, path, format, started_at, finished_at, status) "
            "VALUES (?,?,?,?,?, 'strict_failed')", (kind, path, fmt, now, now))


@contextmanager
def transaction(ws: Workspace) -> Iterator:
    """One write transaction (taken at once, so a second writer waits instead of failing later)."""
    conn = ws.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _apply_token_records(run: Run, writer: TokenWriter, records: Iterable[Parsed], *,
                         strict: bool, progress: ProgressHook | None) -> None:
    n = 0
    for rec in records:
        if rec.kind == "obs":
            writer.add(rec.obs, rec.line)
        elif rec.kind == "ignored":
            run.summary.count("ignored")
        else:
            if strict:
                raise InputError(rec.reason or "bad record", path=run.summary.path, line=rec.line,
                                 hint="fix the record or run without --strict to keep the good ones")
            run.reject(rec.line, rec.reason or "bad record", rec.excerpt)
        n += 1
        if progress is not None and n % 10000 == 0:
            progress(10000)
    writer.flush()
    if progress is not None:
        progress(n % 10000)
    run.summary.accepted += writer.accepted
    run.summary.duplicates += writer.duplicates
    run.summary.records += writer.accepted + writer.duplicates


def _token_records(path: str, fmt: str, f, page_id: str | None) -> Iterator[Parsed]:
    if fmt == "csv":
        return parse_csv(f, path=path)
    if fmt == "jsonl":
        return parse_listing(iter_lines(f), page_id=page_id)
    if fmt == "webhooks":
        return parse_webhooks(_json_values(f))
    raise InputError(f"unknown format {fmt!r}", hint=f"use one of auto, {', '.join(TOKEN_FORMATS)}")


def _json_values(f) -> Iterator[tuple[int, object, str | None]]:
    """JSON lines, or one JSON document spread over many lines (an array or an object)."""
    first = f.read(1 << 16)
    stripped = first.lstrip("\ufeff \t\r\n")
    head_line = stripped.splitlines()[0] if stripped else ""
    if stripped[:1] in ("[", "{"):
        try:
            json.loads(head_line)
        except ValueError:
            text = first + f.read()
            try:
                value = json.loads(text)
            except ValueError:
                value = None  # not one document either: fall back to lines, reporting each
            if value is not None:
                for item in value if isinstance(value, list) else [value]:
                    yield 1, item, None
                return
            f = io.StringIO(text)
            first = ""
    lineno = 0
    for line in _rejoin(first, f):
        lineno += 1
        if line.strip():
            yield from iter_json_values([Line(lineno, line)])


def _rejoin(first: str, f) -> Iterator[str]:
    """Lines of `first` (an already-read chunk, possibly ending mid-line) followed by `f`."""
    buf = ""
    for chunk in itertools.chain(io.StringIO(first), f):
        buf += chunk
        if buf.endswith("\n"):
            yield buf
            buf = ""
    if buf:
        yield buf


def ingest_tokens(ws: Workspace, paths: Iterable[str | Path], *, fmt: str = "auto",
                  strict: bool = False, page_id: str | None = None, clock: Clock = time.time,
                  progress: ProgressHook | None = None) -> IngestSummary:
    """Ingest token files (CSV, token-listing JSONL, webhook deliveries), plain or gzip."""
    summary = IngestSummary()
    for p in paths:
        path = str(p)
        file_fmt = detect_token_format(path) if fmt == "auto" else fmt
        if file_fmt not in TOKEN_FORMATS:
            raise InputError(f"unknown format {fmt!r}", hint="use auto, csv, jsonl or webhooks")
        sha = file_sha256(path)
        source = {"csv": "csv", "jsonl": "listing", "webhooks": "webhook"}[file_fmt]
        try:
            with transaction(ws), open_text(path) as f:
                run = Run(ws, kind="tokens", path=path, fmt=file_fmt, sha=sha, clock=clock)
                writer = TokenWriter(ws.conn, run_id=run.id, source=source,
                                     observed_ms=int(clock() * 1000), path=path)
                _apply_token_records(run, writer, _token_records(path, file_fmt, f, page_id),
                                     strict=strict, progress=progress)
                summary.files.append(run.finish())
        except InputError:
            if strict:
                record_failed_run(ws, kind="tokens", path=path, fmt=file_fmt, clock=clock)
            raise
    return summary


def ingest_token_items(ws: Workspace, items: Iterable[dict], *, page_id: str, origin: str = "pull",
                       path: str | None = None, clock: Clock = time.time) -> FileSummary:
    """Ingest token-listing items (as `GET /<PAGE_ID>/notification_message_tokens` returns them).

    Used by `migrator pull tokens`; one transaction per call, same merge rules as a file.
    """
    label = path or f"<{origin} page {page_id}>"
    with transaction(ws):
        run = Run(ws, kind="tokens", path=label, fmt=origin, sha=None, clock=clock)
        writer = TokenWriter(ws.conn, run_id=run.id, source=origin,
                             observed_ms=int(clock() * 1000), path=label)

        def records() -> Iterator[Parsed]:
            for i, item in enumerate(items, start=1):
                try:
                    yield Parsed(i, "obs", obs=listing_item_to_obs(item, page_id))
                except BadValue as exc:
                    yield Parsed(i, "reject", reason=str(exc), excerpt=json.dumps(item)[:200])

        _apply_token_records(run, writer, records(), strict=False, progress=None)
        return run.finish()

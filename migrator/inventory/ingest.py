"""Ingest token inputs into the workspace: one transaction per file, every record counted.

A file is applied in one transaction: an ingest killed halfway leaves the workspace as it
was before that file; `--strict` rolls the file back at its first bad record. Rejected
records are kept in `rejects` with file, line and reason; the file's counts in `ingest_runs`.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Iterable, Iterator

from migrator.errors import InputError
from migrator.inventory.chunks import CHUNK_CHARS, iter_chunks
from migrator.inventory.sources import TOKEN_FORMATS, detect_token_format, open_text
from migrator.inventory.stage import Chunk, Staged, stage_chunk, stage_items
from migrator.inventory.summary import FileSummary, IngestSummary
from migrator.inventory.workers import WorkerPool, default_workers
from migrator.inventory.writer import (
    STAGE, StageMerger, attached_stage, deferred_indexes,
)
from migrator.store import Workspace

Clock = Callable[[], float]
# a rough size of one record (CSV rows are ~100 bytes, webhook deliveries ~450), to guess a
# file's record count for deferred_indexes
BYTES_PER_RECORD = 256
ProgressHook = Callable[[int], None]


class Run:
    """An ingest_runs row plus the rejects of one input, inside the file's transaction."""

    def __init__(self, ws: Workspace, *, kind: str, path: str, fmt: str | None, sha: str | None,
                 clock: Clock):
        self.conn = ws.conn
        self.clock = clock
        self.kind = kind
        self.summary = FileSummary(path=path, format=fmt)
        self._rejects: list[tuple] = []
        cur = self.conn.execute(
            "INSERT INTO ingest_runs (kind, path, file_sha256, format, started_at) VALUES (?,?,?,?,?)",
            (kind, path, sha, fmt, int(clock())))
        self.id = cur.lastrowid
        self.summary.run_id = self.id
        # where this run's new tokens start (the table grows by rowid); its new events are
        # the merger's to tell (token_events is keyed by time, not by arrival)
        self._tokens_before = self.conn.execute("SELECT IFNULL(MAX(id), 0) FROM tokens").fetchone()[0]

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

    def take_rejects(self, n: int, warnings: int = 0) -> None:
        """Keep the `n` rejects and the warnings of the staged chunk (deserialized into the
        stage schema)."""
        self._flush_rejects()
        s = self.summary
        self.conn.execute(
            f"INSERT INTO rejects (run_id, path, line, reason, excerpt, severity, field, value)"
            f" SELECT ?, ?, line, reason, excerpt, severity, field, value FROM {STAGE}.reject_stage"
            f" ORDER BY line, severity", (self.id, s.path))
        for key, severity in (("first_rejects", "reject"), ("first_warnings", "warning")):
            room = 20 - len(getattr(s, key))
            if room > 0:
                getattr(s, key).extend(
                    {"line": line, "reason": reason} for line, reason in self.conn.execute(
                        f"SELECT line, reason FROM {STAGE}.reject_stage WHERE severity = ?"
                        f" ORDER BY line LIMIT ?", (severity, room)))
        s.rejected += n
        s.records += n
        s.warnings += warnings

    def finish(self, merger: StageMerger | None = None, sha: str | None = None) -> FileSummary:
        """Record the counts (and the file's sha256, when it was taken while reading).

        The rejects of an earlier ingest of the same bytes are dropped: re-ingesting a file
        keeps one copy of its rejects (this run's), not one per run.
        """
        self._flush_rejects()
        s = self.summary
        sha_now = sha or self.conn.execute("SELECT file_sha256 FROM ingest_runs WHERE id=?",
                                           (self.id,)).fetchone()[0]
        if sha_now:
            self.conn.execute(
                "DELETE FROM rejects WHERE run_id IN (SELECT id FROM ingest_runs WHERE"
                " file_sha256 = ? AND kind = ? AND id <> ?)", (sha_now, self.kind, self.id))
        if merger is not None:
            s.accepted += merger.accepted
            s.duplicates += merger.duplicates
            s.rejected += merger.rejected
            s.records += merger.accepted + merger.duplicates + merger.rejected
            s.first_rejects.extend(merger.first_rejects[:max(0, 20 - len(s.first_rejects))])
        self.conn.execute(
            "UPDATE ingest_runs SET finished_at=?, records=?, accepted=?, duplicates=?, ignored=?,"
            " rejected=?, file_sha256=coalesce(?, file_sha256), status_only=? WHERE id=?",
            (int(self.clock()), s.records, s.accepted, s.duplicates, s.ignored, s.rejected, sha,
             int(self._status_only(merger)), self.id))
        return s

    def _status_only(self, merger: StageMerger | None) -> bool:
        """A webhook file that only stopped or resumed tokens we already had: no new token and
        no opt-in (which can change a token's profile) among the events it added."""
        if (self.kind != "tokens" or self.summary.format != "webhooks" or not self.summary.accepted
                or merger is None or merger.new_optins):
            return False
        return not self.conn.execute("SELECT EXISTS (SELECT 1 FROM tokens WHERE id > ?)",
                                     (self._tokens_before,)).fetchone()[0]


def record_failed_run(ws: Workspace, *, kind: str, path: str, fmt: str | None, clock: Clock) -> None:
    """Leave a trace of a file that strict mode refused (its records were not written)."""
    now = int(clock())
    with ws.transaction():
        ws.conn.execute(
            "INSERT INTO ingest_runs (kind, path, format, started_at, finished_at, status) "
            "VALUES (?,?,?,?,?, 'strict_failed')", (kind, path, fmt, now, now))


def _apply_staged(run: Run, merger: StageMerger, staged: Staged, *, strict: bool) -> None:
    """Merge one staged chunk: its rejects first (strict mode stops at the first), then rows."""
    conn = run.conn
    conn.deserialize(staged.db, name=STAGE)
    if staged.rejected:
        if strict:
            line, reason = conn.execute(
                f"SELECT line, reason FROM {STAGE}.reject_stage WHERE severity = 'reject'"
                " ORDER BY line LIMIT 1").fetchone()
            raise InputError(reason or "bad record", path=run.summary.path, line=line,
                             hint="fix the record or run without --strict to keep the good ones")
    if staged.rejected or staged.warnings:
        run.take_rejects(staged.rejected, staged.warnings)
    run.summary.ignored += staged.ignored
    run.summary.records += staged.ignored
    merger.merge(staged)


def _stage_all(chunks: Iterator[Chunk], workers: int, pool: WorkerPool | None = None) -> Iterator[Staged]:
    """Staged chunks in file order: parsed by `pool`, by `workers` new processes, or here
    for one chunk."""
    if pool is not None:
        yield from pool.map(chunks)
        return
    first = next(chunks, None)
    second = next(chunks, None) if first is not None else None
    if second is None or workers <= 0:
        for chunk in itertools.chain(filter(None, (first, second)), chunks):
            yield stage_chunk(chunk)
        return
    with WorkerPool(workers) as pool:
        yield from pool.map(itertools.chain((first, second), chunks))


def ingest_tokens(ws: Workspace, paths: Iterable[str | Path], *, fmt: str = "auto",
                  strict: bool = False, page_id: str | None = None, clock: Clock = time.time,
                  progress: ProgressHook | None = None, workers: int | None = None,
                  chunk_chars: int = CHUNK_CHARS, encoding: str | None = None,
                  delimiter: str | None = None) -> IngestSummary:
    """Ingest token files (CSV, token-listing JSONL, webhook deliveries), plain or gzip.

    A file larger than one chunk is parsed by `workers` processes (default: one per core;
    0 parses in this process) while this one merges; the result is the same either way.
    """
    workers = default_workers() if workers is None else workers
    summary = IngestSummary()
    with attached_stage(ws.conn):
        for p in paths:
            summary.files.append(_ingest_token_file(ws, str(p), fmt=fmt, strict=strict,
                                                    page_id=page_id, clock=clock, progress=progress,
                                                    workers=workers, chunk_chars=chunk_chars,
                                                    encoding=encoding, delimiter=delimiter))
    return summary


def _ingest_token_file(ws: Workspace, path: str, *, fmt: str, strict: bool, page_id: str | None,
                       clock: Clock, progress: ProgressHook | None, workers: int,
                       chunk_chars: int, encoding: str | None = None,
                       delimiter: str | None = None) -> FileSummary:
    file_fmt = detect_token_format(path, encoding) if fmt == "auto" else fmt
    if file_fmt not in TOKEN_FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint="use auto, csv, jsonl or webhooks")
    sha = hashlib.sha256()  # of the file as stored, taken as the chunks are read
    source = {"csv": "csv", "jsonl": "listing", "webhooks": "webhook"}[file_fmt]
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0  # open_text below says what is wrong with the path
    large = size > 2 * chunk_chars
    # a large file's workers are started first: their start-up (~0.2 s of imports) overlaps
    # this process's own (the earlier-run check below hashes the whole file)
    with (WorkerPool(workers) if large and workers > 0 else nullcontext()) as pool:
        earlier = _earlier_run(ws, path) if file_fmt in ("csv", "jsonl") else None
        try:
            # a bulk load's file is synced as it is written, inside the transaction: a write
            # error one of those syncs met then fails it, before its COMMIT (store/writeback.py)
            with (ws.bulk_load() if large else nullcontext(False)) as bulk, ws.transaction(), \
                    (ws.writeback() if bulk else nullcontext()), \
                    open_text(path, hasher=sha, encoding=encoding) as f, \
                    (deferred_indexes(ws.conn, size // BYTES_PER_RECORD) if large else nullcontext()):
                run = Run(ws, kind="tokens", path=path, fmt=file_fmt, sha=None, clock=clock)
                observed_ms, snapshot_run = int(clock() * 1000), run.id
                if earlier is not None:  # these bytes were observed then, not now
                    snapshot_run, observed_ms = earlier[0], min(observed_ms, earlier[1] * 1000)
                merger = StageMerger(ws.conn, run_id=run.id, source=source, observed_ms=observed_ms,
                                     path=path, snapshot_run=snapshot_run)
                chunks = iter_chunks(f, file_fmt, path=path, page_id=page_id, chunk_chars=chunk_chars,
                                     delimiter=delimiter)
                for staged in _stage_all(chunks, workers, pool):
                    _apply_staged(run, merger, staged, strict=strict)
                    if progress is not None:
                        progress(staged.records)
                while f.read(1 << 20):  # whatever the chunker left unread (after a CSV without header)
                    pass
                return run.finish(merger, sha=sha.hexdigest())
        except InputError:
            if strict:
                record_failed_run(ws, kind="tokens", path=path, fmt=file_fmt, clock=clock)
            raise


def _earlier_run(ws: Workspace, path: str) -> tuple[int, int] | None:
    """(id, started_at) of the first completed ingest of a snapshot file with these very bytes.

    A snapshot (CSV export, token listing) is observed when it is ingested; the same bytes
    ingested again were observed at the first ingest, not now. Taken as new, a re-ingested
    export saying `active` would be newer than the stop webhook logged since and re-activate an
    opted-out subscriber. The file is hashed as stored (sha256, one extra read of the raw
    bytes), unless no completed ingest has a hash to match (a first ingest: 0.1-0.2 s of
    hashing per 1M rows saved); a path that cannot be read is left to open_text to report.
    """
    if not ws.conn.execute("SELECT EXISTS (SELECT 1 FROM ingest_runs WHERE kind = 'tokens' AND"
                           " file_sha256 IS NOT NULL AND status = 'ok')").fetchone()[0]:
        return None
    try:
        with open(path, "rb") as raw:
            sha = hashlib.file_digest(raw, "sha256").hexdigest()
    except OSError:
        return None
    return ws.conn.execute("SELECT id, started_at FROM ingest_runs WHERE kind = 'tokens' AND"
                           " file_sha256 = ? AND status = 'ok' ORDER BY id LIMIT 1", (sha,)).fetchone()


def ingest_token_items(ws: Workspace, items: Iterable[dict], *, page_id: str, origin: str = "pull",
                       path: str | None = None, clock: Clock = time.time,
                       batch: int = 50_000) -> FileSummary:
    """Ingest token-listing items (as `GET /<PAGE_ID>/notification_message_tokens` returns them).

    Used by `migrator pull tokens`; one transaction per call, same merge rules as a file.
    """
    label = path or f"<{origin} page {page_id}>"
    with attached_stage(ws.conn), ws.transaction():
        run = Run(ws, kind="tokens", path=label, fmt=origin, sha=None, clock=clock)
        merger = StageMerger(ws.conn, run_id=run.id, source=origin,
                             observed_ms=int(clock() * 1000), path=label)
        numbered = enumerate(items, start=1)
        while block := list(itertools.islice(numbered, batch)):
            _apply_staged(run, merger, stage_items(block, page_id), strict=False)
        return run.finish(merger)

"""Worker frames survive job-control signals, and a damaged frame never reaches the merge.

A worker stopped and continued while it wrote a large frame used to deliver the right length
with the wrong bytes ("database disk image is malformed" at the merge) or a garbled length
(the reader waited forever). These tests stop and continue real worker processes mid-ingest,
and feed the frame reader damaged frames directly.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import zlib
from pathlib import Path

import pytest

from migrator.inventory import ingest_tokens
from migrator.inventory.workers import WorkerError, _read_frame, _write_frame
from migrator.sample import write_tokens_csv
from migrator.store import open_workspace


def _worker_pids() -> list[int]:
    """This process's ingest workers, found through /proc (children running workers.main)."""
    me, pids = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and b"inventory.workers" in cmd:
            pids.append(int(d.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_ingest_survives_workers_stopped_and_continued(tmp_path):
    rows = 60_000
    src = tmp_path / "tokens.csv"
    write_tokens_csv(src, rows)
    ws = open_workspace(tmp_path / "ws.db")
    done = threading.Event()
    result: dict = {}

    def run():
        try:
            result["summary"] = ingest_tokens(ws, [src], workers=2, chunk_chars=1 << 20)
        except BaseException as e:  # reported below
            result["error"] = e
        finally:
            done.set()

    t = threading.Thread(target=run)
    t.start()
    stops = 0
    deadline = time.monotonic() + 120  # a bound, not a timing assumption
    while not done.is_set() and time.monotonic() < deadline:
        pids = _worker_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        time.sleep(0.005)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        stops += bool(pids)
        time.sleep(0.005)
    t.join(timeout=10)
    assert done.is_set(), "ingest hung with its workers stopped and continued"
    assert "error" not in result, repr(result.get("error"))
    assert stops > 0, "the workers were never caught running"
    f = result["summary"].files[0]
    assert (f.records, f.accepted, f.rejected) == (rows, rows, 0)
    ws.close()
    conn = sqlite3.connect(tmp_path / "ws.db")
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == rows


def _frame_bytes(payload: bytes) -> bytes:
    r, w = os.pipe()
    _write_frame(w, payload)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        return f.read()


def _read_from(data: bytes):
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    try:
        return _read_frame(r)
    finally:
        os.close(r)


def test_a_frame_round_trips():
    assert _read_from(_frame_bytes(b"stage database bytes")) == b"stage database bytes"


def test_a_frame_with_a_changed_byte_is_refused():
    raw = bytearray(_frame_bytes(b"x" * 1000))
    raw[500] ^= 0x01
    with pytest.raises(WorkerError, match="checksum"):
        _read_from(bytes(raw))


def test_a_frame_claiming_an_impossible_length_is_refused_not_awaited():
    head = (1 << 40).to_bytes(8, "little") + zlib.crc32(b"").to_bytes(4, "little")
    with pytest.raises(WorkerError, match="length"):
        _read_from(head)


def test_a_frame_cut_short_is_the_end_not_data():
    assert _read_from(_frame_bytes(b"y" * 1000)[:-10]) is None

"""Parse chunks in worker processes, one per core, while this process merges.

A worker is a `python -c` running `main()` below: it reads pickled `Chunk`s on stdin and
writes each result on stdout as a pickled `Staged` without its database, then the database
bytes, each framed by an 8-byte length. Plain
subprocesses rather than `multiprocessing`: spawn and forkserver re-import the caller's
`__main__` (a script without a main guard would start over in every worker) and fork
would copy this process's open SQLite connection and threads.

Chunks go to workers round-robin and results are read back in the same order, so they
arrive in file order; at most `workers + 1` chunks are in flight, which bounds memory.
Feeding happens on one thread per worker so that a worker busy writing a large result can
never deadlock against us writing its next chunk.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import site
import subprocess
import sys
import threading
import traceback
from collections import deque
from pathlib import Path
from typing import BinaryIO, Iterator

from migrator.inventory.stage import Chunk, Staged, stage_chunk

_LEN = 8


class WorkerError(RuntimeError):
    """A worker process failed (a bug or a killed process, never bad input)."""


def _write_frame(out: BinaryIO, payload: bytes) -> None:
    out.write(len(payload).to_bytes(_LEN, "little"))
    out.write(payload)
    out.flush()


def _read_frame(inp: BinaryIO) -> bytes | None:
    head = inp.read(_LEN)
    if len(head) < _LEN:
        return None
    n = int.from_bytes(head, "little")
    data = inp.read(n)
    if len(data) < n:
        return None
    return data


def _worker_env() -> dict[str, str]:
    """Our environment, plus the directory this package was imported from when that is not
    a site directory (a source checkout), appended so that it shadows nothing."""
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[2]
    sites = [*site.getsitepackages(), site.getusersitepackages()]
    if all(Path(p).resolve() != root for p in sites):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(root)]))
    return env


class WorkerPool:
    """`n` worker processes staging chunks in parallel; results come back in order."""

    def __init__(self, n: int):
        # -P: the working directory is not put on the path (a stray orjson.py there must not
        # be imported); _worker_env makes an uninstalled checkout importable
        self.procs = [
            subprocess.Popen([sys.executable, "-P", "-c",
                              "from migrator.inventory.workers import main; main()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_worker_env())
            for _ in range(n)]
        self.queues: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in self.procs]
        self.feeders = [threading.Thread(target=self._feed, args=(p, q), daemon=True)
                        for p, q in zip(self.procs, self.queues)]
        for t in self.feeders:
            t.start()

    @staticmethod
    def _feed(proc: subprocess.Popen, q: queue.SimpleQueue) -> None:
        try:
            while (chunk := q.get()) is not None:
                _write_frame(proc.stdin, pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, OSError):
            pass  # the worker died: the reader reports it
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def _result(self, w: int) -> Staged:
        proc = self.procs[w]
        frame = _read_frame(proc.stdout)
        if frame is not None:
            ok, value = pickle.loads(frame)
            if not ok:
                raise WorkerError(f"an ingest worker failed:\n{value}")
            value.db = _read_frame(proc.stdout)  # the stage database travels as raw bytes
            if value.db is not None:
                return value
        code = proc.wait()
        raise WorkerError(f"an ingest worker process stopped unexpectedly (exit code {code})")

    def map(self, chunks: Iterator[Chunk]) -> Iterator[Staged]:
        n = len(self.procs)
        pending: deque[int] = deque()
        for i, chunk in enumerate(chunks):
            self.queues[i % n].put(chunk)
            pending.append(i % n)
            if len(pending) > n:  # each worker has one chunk queued behind the one it parses
                yield self._result(pending.popleft())
        while pending:
            yield self._result(pending.popleft())

    def close(self) -> None:
        for q in self.queues:
            q.put(None)
        for proc in self.procs:
            proc.stdout.close()  # a worker still writing gets a broken pipe and stops
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
                proc.kill()
                proc.wait()
        for t in self.feeders:
            t.join(timeout=10)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> None:
    """Worker loop: chunks in on stdin, staged chunks out on stdout, until stdin closes.

    Ctrl-C reaches the whole process group: the parent handles it (its transaction rolls
    back) and closes our pipes, so a worker ignores it rather than print a traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while (frame := _read_frame(inp)) is not None:
        chunk = pickle.loads(frame)
        del frame  # a chunk's bytes once, not twice, while it is parsed
        try:
            staged = stage_chunk(chunk)
        except Exception:  # a bug: hand the traceback to the parent, which raises it
            frames = [pickle.dumps((False, traceback.format_exc()))]
        else:
            db, staged.db = staged.db, b""
            frames = [pickle.dumps((True, staged)), db]  # the database unpickled: no copy
        del chunk
        try:
            for payload in frames:
                _write_frame(out, payload)
        except BrokenPipeError:
            return

if __name__ == "__main__":
    main()

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

Frames are moved with `os.write` / `os.readv` on the raw descriptors and carry a CRC-32. A
worker stopped and continued (SIGSTOP/SIGCONT, as a ptrace profiler or job control does) while
it wrote a large frame through `sys.stdout.buffer` delivered a frame of the right length with
the wrong bytes, and SQLite then called the merged stage "malformed"; a frame whose length
was garbled instead made the reader wait forever. With raw writes that loop over partial
writes no byte is lost, and a frame that fails its checksum or claims an impossible length
is a `WorkerError`: the file's transaction rolls back and nothing of it is merged.
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import signal
import site
import subprocess
import sys
import threading
import traceback
import zlib
from collections import deque
from pathlib import Path
from typing import BinaryIO, Iterator

from migrator.inventory.stage import Chunk, Staged, stage_chunk

_HEAD = 12                 # 8-byte length, then the payload's CRC-32 (4 bytes), little-endian
_MAX_FRAME = 1 << 31       # no chunk or stage database comes near 2 GiB: a longer claim is garbage


def default_workers() -> int:
    """One parsing process per core the scheduler gives us."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


class WorkerError(RuntimeError):
    """A worker process failed (a bug or a killed process, never bad input)."""


def _write_frame(fd: int, payload: bytes | bytearray) -> None:
    """Write one frame to descriptor `fd`, looping over partial writes."""
    head = len(payload).to_bytes(8, "little") + zlib.crc32(payload).to_bytes(4, "little")
    for part in (head, payload):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytearray | None:
    """`n` bytes from `fd`, or None at end of file before that."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            return None
        got += k
    return buf


def _read_frame(fd: int) -> bytearray | None:
    """One whole frame from `fd`; None at a clean end of file; WorkerError on a damaged one."""
    head = _read_exact(fd, _HEAD)
    if head is None:
        return None
    n, crc = int.from_bytes(head[:8], "little"), int.from_bytes(head[8:], "little")
    if n > _MAX_FRAME:
        raise WorkerError(f"an ingest worker sent a damaged frame (claimed length {n:,})")
    data = _read_exact(fd, n)
    if data is not None and zlib.crc32(data) != crc:
        raise WorkerError("an ingest worker sent a damaged frame (checksum mismatch)")
    return data


def _worker_env() -> dict[str, str]:
    """Our environment, plus the directory this package was imported from when that is not
    a site directory (a source checkout), appended so that it shadows nothing."""
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[2]
    sites = [*site.getsitepackages(), site.getusersitepackages()]
    if all(Path(p).resolve() != root for p in sites):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(root)]))
    # glibc returned each chunk's large buffers (its text, its stage database) to the system
    # and faulted them in again for the next chunk, ~2 us a page: a worker keeps its heap for
    # its short life instead (its peak is what it held anyway); other C libraries ignore these
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(64 << 20))
    env.setdefault("MALLOC_TRIM_THRESHOLD_", str(1 << 30))
    return env


class WorkerPool:
    """`n` worker processes staging chunks in parallel; results come back in order."""

    def __init__(self, n: int):
        # -P: the working directory is not put on the path (a stray orjson.py there must not
        # be imported); _worker_env makes an uninstalled checkout importable.
        # A worker starts with SIGINT blocked (the mask is inherited through exec): a Ctrl-C
        # while it still imports (~0.2 s; the pool now starts first thing in an ingest) printed
        # a KeyboardInterrupt traceback per worker; main() ignores SIGINT, then unblocks it. Here
        # a Ctrl-C in those few milliseconds is delivered when the mask is restored.
        mask = getattr(signal, "pthread_sigmask", None)  # POSIX only
        blocked = mask(signal.SIG_BLOCK, {signal.SIGINT}) if mask else None
        try:
            self.procs = [
                subprocess.Popen([sys.executable, "-P", "-c",
                                  "from migrator.inventory.workers import main; main()"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_worker_env())
                for _ in range(n)]
        finally:
            if mask:
                mask(signal.SIG_SETMASK, blocked)
        self.queues: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in self.procs]
        self.feeders = [threading.Thread(target=self._feed, args=(p, q), daemon=True)
                        for p, q in zip(self.procs, self.queues)]
        for t in self.feeders:
            t.start()

    @staticmethod
    def _feed(proc: subprocess.Popen, q: queue.SimpleQueue) -> None:
        try:
            while (chunk := q.get()) is not None:
                _write_frame(proc.stdin.fileno(), pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, OSError):
            pass  # the worker died: the reader reports it
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def _result(self, w: int) -> Staged:
        proc = self.procs[w]
        frame = _read_frame(proc.stdout.fileno())
        if frame is not None:
            ok, value = pickle.loads(frame)
            if not ok:
                raise WorkerError(f"an ingest worker failed:\n{value}")
            value.db = _read_frame(proc.stdout.fileno())  # the stage database travels as raw bytes
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
    if hasattr(signal, "pthread_sigmask"):  # blocked by WorkerPool until now (POSIX)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # A chunk's rows are ~30,000 lists alive at once: the cyclic collector, triggered by their
    # allocation, walked them again and again for nothing (they hold no cycles): 12-25 % of a
    # worker's CPU. It stays off while a chunk is staged; the young generations are collected
    # between chunks, so a cycle made on the slow path (an exception) does not accumulate.
    gc.freeze()  # what was imported is never garbage: leave it out of every collection
    gc.disable()
    # frames go to a private copy of stdout; anything a library prints lands on stderr
    inp, out = sys.stdin.fileno(), os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    while True:
        try:
            frame = _read_frame(inp)
        except WorkerError as e:  # the parent is gone or wrote garbage: nothing to answer
            print(f"migrator ingest worker: {e}", file=sys.stderr)
            sys.exit(3)
        if frame is None:
            break
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
        del frames
        gc.collect(1)

if __name__ == "__main__":
    main()

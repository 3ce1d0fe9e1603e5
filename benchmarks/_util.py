"""Small helpers shared by the benchmark scripts: timing and peak memory of a child process."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script: str, *args: str) -> dict:
    """Run `script --child args...` in a fresh interpreter so its peak RSS is its own."""
    out = subprocess.run([sys.executable, script, "--child", *args], check=True,
                         capture_output=True, text=True, env=dict(os.environ))
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_workdir(keep: str | None, prefix: str):
    """A work directory (kept if named) and a fresh workspace path in it: (dir, db)."""
    import tempfile
    from pathlib import Path

    d = Path(keep or tempfile.mkdtemp(prefix=prefix))
    d.mkdir(parents=True, exist_ok=True)
    db = d / "bench.db"
    for p in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        p.unlink(missing_ok=True)
    return d, db


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0

"""Write a bulk load's pages to disk while the load runs, not all at its commit.

A large ingest writes the workspace in one transaction with a rollback journal
(`Workspace.bulk_load`). The kernel keeps what it wrote (about 300 MB per 1M CSV tokens) dirty
in its page cache, and the COMMIT's fsync then waited for all of it: 0.2 s at the end of a
5 s ingest, with both cores idle. While a bulk load runs, a helper thread syncs the file every
half second, so the disk writes while the CPUs parse and merge, and the commit only flushes
the last part.

Syncing early never weakens durability or changes what a crash leaves: pages SQLite has
written may reach the disk at any moment anyway, and SQLite's own ordering (the journal synced
before the pages it protects are overwritten) is untouched.

The descriptor synced is SQLite's own, found in /proc/self/fd by the file's device and inode. A
descriptor of our own would have to be closed again, and closing any descriptor of a file
drops the whole process's POSIX locks on it, SQLite's write lock included. Where /proc is
missing (macOS) nothing is synced early and the commit syncs as before.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

FD_DIR = "/proc/self/fd"
INTERVAL = 0.5  # seconds between syncs: ~30 MB written meanwhile by a 1M-token load


class Writeback:
    """`with Writeback(path):` syncs the file at `path` every `interval` seconds meanwhile."""

    def __init__(self, path: str | os.PathLike, interval: float = INTERVAL):
        self.path = Path(path)
        self.interval = interval
        self.flushes = 0  # syncs done: for tests and curiosity
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def descriptor(self) -> int | None:
        """A descriptor this process holds open on the file (SQLite's), or None."""
        try:
            want = os.stat(self.path)
            names = os.listdir(FD_DIR)
        except OSError:
            return None
        for name in names:
            try:
                fd = int(name)
                st = os.fstat(fd)
            except (ValueError, OSError):  # closed since the listing
                continue
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
                return fd
        return None

    def flush(self) -> bool:
        """Sync the file once; False when no descriptor of it was found or the sync failed.

        The descriptor may be closed (and its number reused) between finding and syncing it:
        the sync then reaches another file or fails, which is harmless either way."""
        fd = self.descriptor()
        if fd is None:
            return False
        try:
            os.fdatasync(fd)
        except OSError:
            return False
        self.flushes += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def __enter__(self) -> "Writeback":
        if os.path.isdir(FD_DIR):
            self._thread = threading.Thread(target=self._run, name="migrator-writeback", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

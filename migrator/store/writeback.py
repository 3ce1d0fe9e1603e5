"""Write a bulk load's pages to disk while the load runs, not all at its commit.

A large ingest writes the workspace in one transaction with a rollback journal
(`Workspace.bulk_load`). The kernel keeps what it wrote (about 300 MB per 1M CSV tokens) dirty
in its page cache, and the COMMIT's fsync then waited for all of it: 0.2 s at the end of a
5 s ingest, with both cores idle. While a bulk load runs, a helper thread syncs the file every
half second, so the disk writes while the CPUs parse and merge, and the commit only flushes
the last part.

The descriptor synced is SQLite's own, found once in /proc/self/fd by the file's device and
inode (and checked again with fstat before each sync). A descriptor of our own would have to
be closed again, and closing any descriptor of a file drops the whole process's POSIX locks on
it, SQLite's write lock included. Where /proc is missing (macOS) nothing is synced early and
the commit syncs as before.

A sync through SQLite's descriptor takes over its duty to see write errors: Linux reports a
failed writeback (EIO; ENOSPC or EDQUOT on thin or network storage) once per open file, to the
first sync after it, so an error this thread met would never reach SQLite's sync at COMMIT,
and the load would commit with pages missing. The thread records the error, and leaving the
block (inside the transaction, before its COMMIT) syncs once more and raises WorkspaceError:
the transaction rolls back. Syncing early otherwise changes nothing a crash leaves: written
pages may reach the disk at any moment anyway, and SQLite's own ordering (the journal synced
before the pages it protects are overwritten) is untouched.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

from migrator.errors import WorkspaceError

FD_DIR = "/proc/self/fd"
DISK_HINT = "check the disk (free space, quota, health), then run the command again"
INTERVAL = 0.5  # seconds between syncs: ~30 MB written meanwhile by a 1M-token load
# the descriptor was closed, or its number reused by something that cannot be synced: not ours
_NOT_OURS = (errno.EBADF, errno.EINVAL)


class Writeback:
    """`with Writeback(path):` inside the load's transaction syncs the file at `path` every
    `interval` seconds meanwhile, and raises WorkspaceError on leaving if a sync failed."""

    def __init__(self, path: str | os.PathLike, interval: float = INTERVAL):
        self.path = Path(path).absolute()  # a later chdir must not make it another file
        self.interval = interval
        self.flushes = 0  # syncs done: for tests and curiosity
        self.error: OSError | None = None  # the first write error a sync reported
        self._fd: int | None = None
        self._id: tuple[int, int] | None = None
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
                self._id = (st.st_dev, st.st_ino)
                return fd
        return None

    def flush(self) -> bool:
        """Sync the file once through the descriptor found on entering (found now when called
        outside a `with`); False when there is none, it is no longer the file's, or the sync
        failed (a write error is kept in `error`)."""
        if self._fd is None:
            self._fd = self.descriptor()
        fd = self._fd
        if fd is None:
            return False
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self._id:
                raise OSError(errno.EBADF, "no longer the workspace file")
            os.fdatasync(fd)
        except OSError as exc:
            if exc.errno in _NOT_OURS:
                self._fd = None  # closed or reused: stop syncing through it
            elif self.error is None:
                self.error = exc
            return False
        self.flushes += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and self._fd is not None:
            self.flush()

    def __enter__(self) -> "Writeback":
        self._fd = self.descriptor()  # None without /proc: nothing to sync through
        if self._fd is not None:
            thread = threading.Thread(target=self._run, name="migrator-writeback", daemon=True)
            self._thread = thread
            try:
                thread.start()
            except BaseException:  # e.g. a Ctrl-C while it starts: never leave it running
                self._stop.set()
                raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if exc_type is not None:
            return  # the load failed anyway: its own error is the one to report
        if self._fd is not None:
            self.flush()  # what the last interval wrote, so that no error is left for COMMIT to miss
        if self.error is not None:
            raise WorkspaceError(
                f"the disk reported an error while the workspace {self.path} was written "
                f"({self.error.strerror or self.error}): nothing of this load was kept",
                hint=DISK_HINT)

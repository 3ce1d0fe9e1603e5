"""A disk that fails during a bulk load, through the real CLI: nothing is kept, and the user
reads one clear error, not a traceback (found in review).

The errors are injected at the C library (an LD_PRELOAD shim around fdatasync and fsync, built
with the system's cc; skipped without one), so that SQLite's own syncs fail too, the way a disk
that failed once keeps failing or a thin volume stays full: os.fdatasync alone cannot reach them.

- A write error that surfaces at SQLite's own sync at COMMIT (after the writeback block's last
  sync): SQLite sees it and commits nothing; it reached the user as `sqlite3.OperationalError:
  disk I/O error` tracebacks (COMMIT, then the switch back to WAL in bulk_load's finally).
- A disk that keeps failing: the writeback's WorkspaceError was replaced by the OperationalError
  of the failed ROLLBACK and switch back to WAL.
- Ctrl-C, the documented way to stop `migrator emulator serve`, printed the group's words about
  a rolled-back step.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest

from migrator.store import open_workspace

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
/* Syncs of the file whose path ends with RR_FAIL fail with EIO once this process's Python code
   (the writeback thread or the block's last flush, i.e. not libsqlite3) has synced it once.
   RR_MODE=sqlite: only SQLite's own syncs fail then (an error after the block's last sync, met
   at COMMIT); RR_MODE=all: every sync fails then (a disk that keeps failing). */
static volatile int python_synced = 0;
static int bad(int fd, void *caller) {
    const char *want = getenv("RR_FAIL");
    if (!want) return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) return 0;
    target[n] = 0;
    size_t lw = strlen(want);
    if (n < (ssize_t)lw || strcmp(target + n - lw, want) != 0) return 0;
    Dl_info info;
    int from_sqlite = dladdr(caller, &info) && info.dli_fname && strstr(info.dli_fname, "sqlite");
    const char *mode = getenv("RR_MODE");
    if (!from_sqlite && !python_synced) { python_synced = 1; return !strcmp(mode, "all"); }
    if (!python_synced) return 0;
    return from_sqlite || !strcmp(mode, "all");
}
int fdatasync(int fd) {
    if (bad(fd, __builtin_return_address(0))) { errno = EIO; return -1; }
    int (*real)(int) = dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
int fsync(int fd) {
    if (bad(fd, __builtin_return_address(0))) { errno = EIO; return -1; }
    int (*real)(int) = dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}
"""


def _big_csv(path):
    with path.open("w") as f:   # > 2 chunks (4 MiB each): the ingest bulk-loads it
        f.write("page_id,token,psid,topic_title,timezone,token_status,created_at,token_expiry\n")
        for i in range(150_000):
            f.write(f"1{i % 50},TK{i:09d},{10**15 + i},Deals,Europe/Paris,active,1654101006,1754101006000\n")


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the fdatasync shim")
    d = tmp_path_factory.mktemp("shim")
    (d / "shim.c").write_text(SHIM)
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(d / "shim.so"), str(d / "shim.c"), "-ldl"],
                   check=True, capture_output=True)
    return d / "shim.so"


@pytest.mark.parametrize("mode", ["sqlite", "all"])
def test_a_disk_error_in_a_bulk_load_reaches_the_user_as_a_message_not_a_traceback(tmp_path, shim, mode):
    """Exit 1, one `error:` line saying the disk failed and nothing was kept, no traceback; the
    next open rolls the hot journal back and restores WAL."""
    csv, db = tmp_path / "big.csv", tmp_path / "ws.db"
    _big_csv(csv)
    open_workspace(db).close()
    env = {**__import__("os").environ, "LD_PRELOAD": str(shim), "RR_FAIL": "/ws.db", "RR_MODE": mode}
    r = subprocess.run([sys.executable, "-m", "migrator", "--db", str(db), "ingest", "tokens", str(csv)],
                       capture_output=True, text=True, env=env, timeout=300)
    ws = open_workspace(db)   # rolls a hot journal back, restores WAL
    state = (ws.conn.execute("PRAGMA journal_mode").fetchone()[0],
             ws.conn.execute("PRAGMA integrity_check").fetchone()[0],
             ws.conn.execute("SELECT count(*) FROM tokens").fetchone()[0])
    ws.close()
    assert state == ("wal", "ok", 0)            # held up: nothing of the failed load was committed
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "error:" in r.stderr and "disk" in r.stderr


def test_ctrl_c_stopping_the_emulator_does_not_claim_a_rollback(tmp_path):
    """`migrator emulator serve` runs until Ctrl-C: it says it stopped, not that a step was
    rolled back and should be run again."""
    db = tmp_path / "ws.db"
    open_workspace(db).close()
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "--db", str(db), "emulator", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()   # the emulator prints it once it listens
        assert "emulator listening" in line, line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err
    assert proc.returncode == 130, (proc.returncode, err)
    assert "emulator stopped" in err
    assert "rolled back" not in err and "Run the command again" not in err, err

"""Hostile review of the CSV throughput work (48a23e9..4685806): what it must not change.

Each test here holds a guarantee the speed-ups could break: flat memory whatever the file
holds, the same stored result whatever the chunking, workers or caches, and no traceback.
"""

from __future__ import annotations

import gc
import tracemalloc

from migrator.inventory import ingest_tokens
from migrator.store import open_workspace


def test_an_ingest_keeps_no_copy_of_the_file_s_long_titles_in_memory(tmp_path):
    """The converter remembers accepted topic titles (shared strings for repeated values), up
    to 4096 of them. A title may be 64 KB long (csv's field limit): remembering long ones kept
    up to 4096 x 64 KB (256 MB) of one file's text alive in a worker, and in this process for
    ever (workers=0 or a small file), where an ingest's memory must stay flat. 300 distinct 40 KB
    titles (12 MB) must not stay behind after the ingest."""
    p = tmp_path / "titles.csv"
    with open(p, "w") as f:
        f.write("page_id,token,topic_title\n")
        for i in range(300):
            f.write(f"1,T{i},{('%05d' % i) * 8000}\n")
    ws = open_workspace(tmp_path / "ws.db")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert ingest_tokens(ws, [p], workers=0).files[0].accepted == 300
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        ws.close()
    assert kept < 2_000_000, f"{kept:,} bytes of the file stayed in memory after the ingest"


def test_a_ctrl_c_while_the_workers_start_prints_no_traceback_and_kills_no_worker(capfd):
    """Ctrl-C reaches the whole process group. A large file's workers now start first thing in
    an ingest; a worker hit while it still imported (before main() ignores SIGINT) printed a
    KeyboardInterrupt traceback on the user's terminal, or died. Every worker is interrupted
    from the moment it exists until well past its start-up: none may print a traceback, and
    the pool must still stage a chunk."""
    import os
    import signal
    import time

    from migrator.inventory.stage import Chunk
    from migrator.inventory.tokens import CsvLayout
    from migrator.inventory.workers import WorkerPool

    layout = CsvLayout(["page_id", "token"])
    with WorkerPool(2) as pool:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            for proc in pool.procs:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGINT)
            time.sleep(0.002)
        staged = list(pool.map(iter([Chunk("csv", "1,T1\n1,T2\n", 2, csv_layout=layout),
                                     Chunk("csv", "1,T3\n", 4, csv_layout=layout)])))
    assert [s.snapshots for s in staged] == [2, 1]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err

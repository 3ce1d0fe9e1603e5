"""The whole path at partner scale: sample -> ingest -> audit -> plan -> status -> an execute slice.

Every step runs as the `migrator` command a migration engineer types, in its own process, and is
measured from outside: wall seconds and the step's peak RSS (`wait4`'s ru_maxrss: the largest of
the step's process and the worker processes it waited for). The emulator that answers the
execute slice runs on loopback and its own peak RSS is printed too. Target (10M tokens, 2 cores):
every step under 300 MB and flat from 1M to 10M; `status` and the plan's staleness check
interactive.

    python benchmarks/scale.py --tokens 1000000
    python benchmarks/scale.py --tokens 10000000 --slice 100000 --keep /tmp/scale10m

The estate is the fast benchmark writer's (`write_tokens_csv`: 50 pages, realistic zones and
statuses, mixed time formats), with a pages file that puts every page on one US ad account and
a spec that gives every topic one message, so the plan's size follows the estate's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import fresh_workdir  # noqa: E402

from migrator.sample import write_tokens_csv  # noqa: E402
from migrator.sample.bench import _PAGES  # noqa: E402
from migrator.sample.pages import TOPICS  # noqa: E402

ACT = "1000000001"
PAGES = [str(100_000_000_000_000 + 7919 * k) for k in range(_PAGES)]  # as write_tokens_csv names them

SPEC_HEAD = f"""
name = "scale benchmark"
[[ad_accounts]]
id = "{ACT}"
currency = "USD"
business_country = "US"
cost_per_message = 2
[campaign]
per = "page"
daily_budget = 1000000000
[schedule]
window = "00:00-23:59"
warmup_minutes = 0
batch_size = 10000
batches_per_day = 1000
"""


def _spec() -> str:
    parts = [SPEC_HEAD]
    for page in PAGES:
        parts.append(f'[[content]]\npage_id = "{page}"\nmessage = {{ text = "Deals this week at page {page}." }}\n')
    return "\n".join(parts)


def _load() -> str:
    """The 1-minute load average now (the machine is shared: every figure is printed beside it)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def step(name: str, argv: list[str], env: dict, log: Path, ok=(0,)) -> tuple[float, float, int]:
    """Run one command; (wall seconds, peak RSS MB, exit code). Output goes to `log`."""
    la = _load()
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    print(f"{name:28s} {secs:8.1f} s   peak RSS {ru.ru_maxrss / 1024:7.0f} MB   exit {code}   "
          f"load {la}-{_load()}", flush=True)
    if code not in ok:
        sys.exit(f"{name} failed (exit {code}); see {log}")
    return secs, ru.ru_maxrss / 1024, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--slice", type=int, default=100_000, help="sends of the execute slice")
    ap.add_argument("--as-of", default="2026-11-30")
    ap.add_argument("--keep", default=None, help="work directory to keep (default: a temporary one)")
    a = ap.parse_args()
    d, db = fresh_workdir(a.keep, "bench-scale-")
    log = d / "scale.log"
    log.unlink(missing_ok=True)
    mig = [sys.executable, "-m", "migrator", "--db", str(db), "--quiet"]
    env = dict(os.environ, MIGRATOR_ACCESS_TOKEN="bench-token")
    print(f"{a.tokens:,} tokens in {d} (commands and output: {log})", flush=True)
    try:
        la = os.getloadavg()[0]
        print(f"load average before: {la:.2f} on {os.cpu_count()} cores", flush=True)
    except OSError:
        pass

    t0 = time.perf_counter()
    write_tokens_csv(d / "tokens.csv", a.tokens)
    with open(d / "pages.csv", "w", encoding="utf-8") as f:
        f.write("page_id,name,business_country,ad_account_id,currency\n")
        f.writelines(f"{p},Scale page {i},US,{ACT},USD\n" for i, p in enumerate(PAGES))
    (d / "scale.toml").write_text(_spec())
    print(f"{'sample (fast writer)':28s} {time.perf_counter() - t0:8.1f} s   load {_load()}", flush=True)

    step("ingest pages", mig + ["ingest", "pages", str(d / "pages.csv")], env, log)
    step("ingest tokens", mig + ["ingest", "tokens", str(d / "tokens.csv")], env, log)
    step("audit", mig + ["audit", "--as-of", a.as_of], env, log)
    step("plan", mig + ["plan", str(d / "scale.toml"), "--as-of", a.as_of, "-o", str(d / "plan.json")],
         env, log)
    step("status (before execute)", mig + ["status"], env, log)
    step("execute, dry run (1 batch)", mig + ["execute", str(d / "plan.json"), "--batches", "1"], env, log)

    server = subprocess.Popen(mig + ["emulator", "serve", "--port", "0", "--warmup", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        t1 = time.perf_counter()
        url = "http://" + server.stdout.readline().split("http://")[1].split()[0]
        print(f"{'emulator start (loads tokens)':28s} {time.perf_counter() - t1:8.1f} s   load {_load()}", flush=True)
        batches = max(1, a.slice // 10_000)
        secs, _, _ = step(f"execute slice ({batches} batches)",
                          mig + ["execute", str(d / "plan.json"), "--execute", "--base-url", url,
                                 "--batches", str(batches), "--no-wait"], env, log)
        import sqlite3

        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as ro:
            sent = ro.execute("SELECT COUNT(*) FROM exec_sends WHERE state = 'sent'").fetchone()[0]
        print(f"{'  sent in the slice':28s} {sent:8,d}     {sent / secs:7.0f} sends/s", flush=True)
        step("status (after execute)", mig + ["status"], env, log)
    finally:
        server.terminate()
        _, _, ru = os.wait4(server.pid, 0)
        print(f"{'emulator':28s} {'':8s}     peak RSS {ru.ru_maxrss / 1024:7.0f} MB", flush=True)
    try:
        print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    except OSError:
        pass


if __name__ == "__main__":
    main()

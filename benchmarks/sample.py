"""Sample-estate benchmark: generation rate and peak RSS of `generate_sample` and of the
fast benchmark writers (`write_tokens_csv`, `write_webhooks_jsonl`).

    python benchmarks/sample.py                       # 100k-token estate, 1M-row writers
    python benchmarks/sample.py --tokens 300000 --rows 3000000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import Timer, peak_rss_mb, run_child  # noqa: E402


def child(what: str, out: str, n: str) -> None:
    from migrator.sample import generate_sample, write_tokens_csv, write_webhooks_jsonl

    n_ = int(n)
    with Timer() as t:
        if what == "estate":
            generate_sample(out, tokens=n_, pages=40, seed=7)
        elif what == "csv":
            write_tokens_csv(Path(out) / "tokens.csv", n_, seed=1)
        else:
            write_webhooks_jsonl(Path(out) / "webhooks.jsonl", n_, seed=1)
    size = sum(p.stat().st_size for p in Path(out).iterdir())
    print(json.dumps({"n": n_, "seconds": t.seconds, "peak_rss_mb": peak_rss_mb(), "mb": size / 1e6}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=100_000, help="tokens in the sample estate")
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows/events for the fast writers")
    ap.add_argument("--child", nargs=3, metavar=("WHAT", "OUT", "N"))
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    for what, n, unit in (("estate", a.tokens, "tokens"), ("csv", a.rows, "CSV rows"),
                          ("webhooks", a.rows, "webhook events")):
        with tempfile.TemporaryDirectory() as d:
            r = run_child(__file__, what, d, str(n))
        print(f"{what:9s} {r['n']:>10,} {unit:15s} in {r['seconds']:6.1f} s = "
              f"{r['n'] / r['seconds']:>9,.0f}/s, {r['mb']:7.1f} MB written, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()

"""Ingest benchmark: N tokens as CSV and as webhook JSONL, records/s and peak RSS.

Targets (issue 2, 2-core machine): >= 100,000 CSV tokens/s and >= 50,000 webhook events/s,
peak memory under 300 MB and not growing with file size (compare --tokens 1000000 and 3000000).

    python benchmarks/ingest.py --tokens 1000000
    python benchmarks/ingest.py --tokens 3000000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import Timer, peak_rss_mb, run_child  # noqa: E402

def child(db: str, path: str, fmt: str) -> None:
    from migrator.inventory import ingest_tokens
    from migrator.store import open_workspace

    ws = open_workspace(db)
    with Timer() as t:
        s = ingest_tokens(ws, [path], fmt=fmt)
    ws.close()
    f = s.files[0]
    print(json.dumps({"records": f.records, "accepted": f.accepted, "seconds": t.seconds,
                      "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--child", nargs=3, metavar=("DB", "PATH", "FORMAT"))
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        print(f"generating {a.tokens:,} CSV rows and {a.tokens:,} webhook events ...", flush=True)
        from migrator.sample import write_tokens_csv, write_webhooks_jsonl

        write_tokens_csv(d / "tokens.csv", a.tokens)
        write_webhooks_jsonl(d / "webhooks.jsonl", a.tokens)
        for name, fmt in (("tokens.csv", "csv"), ("webhooks.jsonl", "webhooks")):
            r = run_child(__file__, str(d / f"{fmt}.db"), str(d / name), fmt)
            rate = r["records"] / r["seconds"]
            print(f"{fmt:9s} {r['records']:>10,} records in {r['seconds']:6.1f} s = "
                  f"{rate:>9,.0f} records/s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()

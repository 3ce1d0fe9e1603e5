"""Converter benchmark: messages/s for convert_message and for convert_workspace_contents.

Content is deduplicated on ingest, so even a 10M-token estate has few distinct messages; this
measures that the converter is never the slow part and that its memory stays flat (rows are
converted BATCH at a time).

    python benchmarks/convert.py --messages 50000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import Timer, peak_rss_mb, run_child  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "convert"


def samples() -> list:
    """The golden inputs: every shape and button type, in realistic proportions of nothing."""
    return [json.loads(p.read_text()) for p in sorted(GOLDEN.glob("*.in.json"))]


def child(n: int) -> dict:
    from migrator.convert import convert_message
    from migrator.inventory import convert_workspace_contents
    from migrator.store import open_workspace

    base = samples()
    with Timer() as t:
        for i in range(n):
            convert_message(base[i % len(base)])
    direct = n / t.seconds
    with tempfile.TemporaryDirectory() as d:
        ws = open_workspace(Path(d) / "bench.db")
        rows = ({"content_hash": f"h{i}", "source": "library",
                 "message": json.dumps(_vary(base[i % len(base)], i))} for i in range(n))
        ws.db["contents"].insert_all(rows, batch_size=2000)
        with Timer() as t2:
            counts = convert_workspace_contents(ws)
        ws.close()
    return {"messages": n, "convert_message_per_s": round(direct),
            "workspace_rows_per_s": round(n / t2.seconds), "counts": counts,
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def _vary(obj, i):
    """Make each row distinct (as deduplicated content is) without changing its shape."""
    m = obj.get("message", obj) if isinstance(obj, dict) else obj
    return {"m": m, "n": i} if not isinstance(m, dict) else {**m, "metadata": f"v{i}"} if "text" in m else m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=50000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.messages)))
        return
    r = run_child(__file__, "--messages", str(args.messages))
    print(f"convert_message:            {r['convert_message_per_s']:>9,} messages/s")
    print(f"convert_workspace_contents: {r['workspace_rows_per_s']:>9,} rows/s ({r['messages']:,} rows)")
    print(f"outcomes: {r['counts']}")
    print(f"peak RSS: {r['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()

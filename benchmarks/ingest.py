"""Ingest benchmark: N tokens as CSV and as webhook JSONL, records/s and peak RSS.

Targets (issue 2, 2-core machine): >= 100,000 CSV tokens/s and >= 50,000 webhook events/s,
peak memory under 300 MB and not growing with file size (compare --tokens 1000000 and 3000000).

    python benchmarks/ingest.py --tokens 1000000
    python benchmarks/ingest.py --tokens 3000000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import Timer, peak_rss_mb, run_child  # noqa: E402

ZONES = ["America/New_York", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Jakarta", "Asia/Manila",
         "Europe/Berlin", "Europe/Paris", "Asia/Tokyo", "Asia/Seoul", "Australia/Sydney",
         "Europe/London", "UTC", "Europe/Zurich", "America/Mexico_City", "Asia/Ho_Chi_Minh"]


def write_csv(path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("page_id,token,psid,topic_title,timezone,country,token_status,token_expiry,created_at\n")
        for i in range(n):
            page = 100000 + i % 50
            status = "stopped" if rng.random() < 0.05 else "active"
            country = rng.choice(["", "", "", "US", "BR", "DE"])
            f.write(f"{page},tok{i:09d}x{rng.getrandbits(64):016x},{7000000 + i // 2},Deals,"
                    f"{rng.choice(ZONES)},{country},{status},{1_700_000_000_000 + i},"
                    f"2024-0{1 + i % 9}-1{i % 10}T10:00:00Z\n")


def write_webhooks(path: Path, n: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            tok = i if rng.random() < 0.8 else rng.randrange(max(1, i))  # some stop/resume/refresh
            ts = 1_690_000_000_000 + i * 1000 - rng.randrange(5000)  # slightly out of order
            optin = {"type": "notification_messages", "notification_messages_token": f"wh{tok:09d}",
                     "payload": "deals", "title": "Deals",
                     "notification_messages_timezone": rng.choice(ZONES),
                     "token_expiry_timestamp": 2145916800000, "user_token_status": "NOT_REFRESHED"}
            if tok != i:
                optin["notification_messages_status"] = rng.choice(
                    ["STOP_NOTIFICATIONS", "RESUME NOTIFICATIONS"])
            page = str(200000 + tok % 50)
            f.write(json.dumps({"object": "page", "entry": [{"id": page, "time": ts, "messaging": [
                {"sender": {"id": str(9000000 + tok)}, "recipient": {"id": page}, "timestamp": ts,
                 "optin": optin}]}]}) + "\n")


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
        write_csv(d / "tokens.csv", a.tokens)
        write_webhooks(d / "webhooks.jsonl", a.tokens)
        for name, fmt in (("tokens.csv", "csv"), ("webhooks.jsonl", "webhooks")):
            r = run_child(__file__, str(d / f"{fmt}.db"), str(d / name), fmt)
            rate = r["records"] / r["seconds"]
            print(f"{fmt:9s} {r['records']:>10,} records in {r['seconds']:6.1f} s = "
                  f"{rate:>9,.0f} records/s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()

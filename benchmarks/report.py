"""Benchmark the reports on a large estate: many pages, many tokens, many content messages.

Builds the estate through the public ingest functions (CSV files written here), audits it,
then builds and writes each report, printing per report: build and render seconds, HTML
size, CSV size and peak RSS (ru_maxrss). The issue's target: 10,000 pages render to a file
of sensible size that opens quickly (the readiness HTML lists the most urgent pages, the
CSV beside it every page).

    python benchmarks/report.py                          # 10,000 pages, 200,000 tokens
    python benchmarks/report.py --pages 10000 --tokens 1000000 --keep /tmp/bench-report
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from migrator.audit import run_audit
from migrator.inventory import ingest_content, ingest_pages, ingest_tokens
from migrator.report import KINDS, build_report, write_report
from migrator.store import open_workspace

COUNTRIES = ["US", "BR", "IN", "MX", "DE", "JP", "GB", "PH", None]
ZONES = ["America/New_York", "America/Sao_Paulo", "Asia/Kolkata", "America/Mexico_City", "Europe/Berlin",
         "Asia/Tokyo", "Europe/London", "Asia/Manila", "UTC", "America/Chicago"]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_inputs(d: Path, pages: int, tokens: int, seed: int = 7) -> list[Path]:
    rnd = random.Random(seed)
    p = d / "pages.csv"
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["page_id", "name", "business_country", "ad_account_id", "currency"])
        for i in range(pages):
            bc = rnd.choice(COUNTRIES)
            w.writerow([f"{100000 + i}", f"Shop {i} <&> \"quoted\"", bc or "",
                        "" if rnd.random() < 0.05 else f"{900000 + i}", "USD"])
    t = d / "tokens.csv"
    with t.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["page_id", "token", "psid", "topic_title", "timezone", "country"])
        for i in range(tokens):
            w.writerow([f"{100000 + rnd.randrange(pages)}", f"TOK{i:09d}", f"PSID{i // 2:09d}",
                        rnd.choice(["Deals", "News"]), rnd.choice(ZONES),
                        rnd.choice(COUNTRIES) if rnd.random() < 0.3 else ""])
    c = d / "content.jsonl"
    with c.open("w") as f:
        for i in range(min(pages, 2000)):
            text = "Offer " * rnd.choice([5, 50, 150])
            f.write(json.dumps({"page_id": f"{100000 + i}", "key": f"k{i}", "topic_title": "Deals",
                                "message": {"text": text + str(i)}}) + "\n")
    return [p, t, c]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--tokens", type=int, default=200_000)
    ap.add_argument("--keep", type=Path)
    a = ap.parse_args()
    d = a.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pages, toks, content = write_inputs(d, a.pages, a.tokens)
    ws = open_workspace(d / "ws.db")
    ingest_pages(ws, [pages])
    ingest_tokens(ws, [toks])
    ingest_content(ws, [content])
    run_audit(ws, as_of=date(2026, 1, 15))
    print(f"estate: {a.pages:,} pages, {a.tokens:,} tokens built and audited in {time.perf_counter() - t0:.1f} s "
          f"({d})")
    for kind in ("audit", "readiness"):
        t1 = time.perf_counter()
        model = build_report(ws, kind)
        t2 = time.perf_counter()
        paths = write_report(model, d / "reports" / f"{kind}.html")
        t3 = time.perf_counter()
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in paths)
        print(f"{kind:<10} build {t2 - t1:6.2f} s  render+write {t3 - t2:6.2f} s  {sizes}  peak RSS {rss_mib():.0f} MiB")
    print(f"(execution needs a plan; {', '.join(KINDS)} are the report kinds)")
    ws.close()


if __name__ == "__main__":
    main()

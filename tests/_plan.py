"""Helpers for the planner tests: small estates built through the public ingest and audit."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timezone
from pathlib import Path

from migrator.audit import run_audit
from migrator.inventory import ingest_content, ingest_pages, ingest_tokens
from migrator.plan import make_plan

AS_OF = date(2026, 3, 1)          # after RN's discontinuation: US recipients migrate
START = "2026-03-02T00:00:00Z"
TOKEN_COLS = ["page_id", "token", "psid", "topic_title", "timezone", "country", "next_eligible_at"]

BASE_SPEC = """
name = "test"
[[ad_accounts]]
id = "111"
currency = "USD"
business_country = "US"
cost_per_message = 2

[campaign]
daily_budget = 1000
start = 2026-03-02T00:00:00Z

[schedule]
window = "09:00-17:00"
warmup_minutes = 0
"""


def ts(s: str) -> int:
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp())


def utc(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M")


def tok(i, page="P1", topic="Deals", tz="America/New_York", country="US", psid=None, nea=None):
    return {"page_id": page, "token": f"TOKEN{i:06d}SECRET", "psid": psid or f"PSID{i:06d}",
            "topic_title": topic, "timezone": tz, "country": country, "next_eligible_at": nea or ""}


def ingest(ws, tmp: Path, *, tokens=(), pages=None, content=None, name="x"):
    """Write and ingest pages/tokens/content files (only those given)."""
    tmp.mkdir(parents=True, exist_ok=True)
    if pages is not None:
        p = tmp / f"pages-{name}.csv"
        with p.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["page_id", "name", "business_country", "ad_account_id", "currency"])
            w.writerows(pages)
        ingest_pages(ws, [p])
    if tokens:
        p = tmp / f"tokens-{name}.csv"
        with p.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=TOKEN_COLS)
            w.writeheader()
            w.writerows(tokens)
        ingest_tokens(ws, [p])
    if content is not None:
        p = tmp / f"content-{name}.jsonl"
        p.write_text("".join(json.dumps(c) + "\n" for c in content))
        ingest_content(ws, [p])


# a send window of the whole day: for tests that run real processes on the wall clock, whose sends
# must be due whatever hour of the day the suite happens to run
ALL_DAY_SPEC = BASE_SPEC.replace('window = "09:00-17:00"', 'window = "00:00-24:00"')


def lib(page, key, topic, message):
    return {"page_id": page, "key": key, "topic_title": topic, "message": message}


def estate(ws, tmp: Path, tokens, *, content=None, pages=None, as_of=AS_OF):
    """Pages P1 (US, act 111), content for topic Deals, the tokens, then the audit."""
    ingest(ws, tmp, tokens=tokens,
           pages=pages if pages is not None else [["P1", "Shop One", "US", "111", "USD"]],
           content=content if content is not None else [lib("P1", "deals", "Deals", {"text": "Deals!"})])
    return run_audit(ws, as_of=as_of)


def spec_file(tmp: Path, extra: str = "", base: str = BASE_SPEC, name="spec.toml") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    p = tmp / name
    p.write_text(base + "\n" + extra)
    return p


def plan(ws, tmp: Path, extra: str = "", *, base: str = BASE_SPEC, **kw):
    return make_plan(ws, spec_file(tmp, extra, base=base), as_of=kw.pop("as_of", AS_OF), clock=lambda: 1_772_000_000,
                     **kw)


def sends(ws, plan_id):
    return list(ws.db.query("SELECT s.*, t.token, t.timezone, t.psid, t.next_eligible_at FROM plan_sends s"
                            " JOIN tokens t ON t.id = s.token_id WHERE plan_id = ? ORDER BY send_id",
                            [plan_id]))

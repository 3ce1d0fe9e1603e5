"""Helpers for the report tests: a small hostile estate built through the public ingest,
audit and plan functions (page names, topics and content carry <script> and quotes)."""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

from migrator.audit import run_audit
from migrator.inventory import ingest_content, ingest_pages, ingest_tokens
from migrator.plan import make_plan

AS_OF = date(2026, 1, 15)       # 26 days before RN's discontinuation (2026-02-10)
CLOCK = lambda: 1_768_435_200   # noqa: E731  2026-01-15T00:00:00Z
EVIL = '<script>alert("x")</script> & \'quoted\' "double" </script><img src=x onerror=alert(1)>'
EVIL_TOPIC = 'Deals </script><script>alert(2)</script> "now"'

SPEC = """
name = "report test"
[[ad_accounts]]
id = "111"
currency = "USD"
business_country = "US"
cost_per_message = 2

[campaign]
daily_budget = 100000
start = 2026-01-16T00:00:00Z

[schedule]
window = "09:00-17:00"
warmup_minutes = 0
"""

TOKEN_COLS = ["page_id", "token", "psid", "topic_title", "timezone", "country", "token_status"]


def tokens() -> list[dict]:
    out = []
    # P1: US business, US recipients (move), a stopped one, a German recipient (stays on RN)
    for i in range(6):
        out.append({"page_id": "P1", "token": f"RAWTOKEN{i:04d}XYZ", "psid": f"RAWPSID{i:04d}Q",
                    "topic_title": EVIL_TOPIC, "timezone": "America/New_York", "country": "US",
                    "token_status": "stopped" if i == 5 else "active"})
    out.append({"page_id": "P1", "token": "RAWTOKENDE01XYZ", "psid": "RAWPSIDDE01Q", "topic_title": EVIL_TOPIC,
                "timezone": "Europe/Berlin", "country": "DE", "token_status": "active"})
    # P2: German business (MM closed), US recipients: on RN until it stops, then lost
    for i in range(3):
        out.append({"page_id": "P2", "token": f"RAWTOKENP2{i:02d}XYZ", "psid": f"RAWPSIDP2{i:02d}Q",
                    "topic_title": "News", "timezone": "America/Chicago", "country": "", "token_status": "active"})
    # P3: no ad account, unknown region
    out.append({"page_id": "P3", "token": "RAWTOKENP3UNK", "psid": "RAWPSIDP3UNK", "topic_title": "News",
                "timezone": "UTC", "country": "", "token_status": "active"})
    out.append({"page_id": "P3", "token": "RAWTOKENP3US", "psid": "RAWPSIDP3US", "topic_title": "News",
                "timezone": "America/Denver", "country": "US", "token_status": "active"})
    return out


def build_estate(ws, tmp: Path, *, with_plan: bool = True, as_of: date = AS_OF, spec: str = SPEC):
    """Pages, tokens and content (hostile text included), the audit, and optionally a plan."""
    tmp.mkdir(parents=True, exist_ok=True)
    pages = tmp / "pages.csv"
    with pages.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["page_id", "name", "business_country", "ad_account_id", "currency"])
        w.writerow(["P1", EVIL, "US", "111", "USD"])
        w.writerow(["P2", "Kaufhaus \"Nord\" <b>DE</b>", "DE", "222", "EUR"])
        w.writerow(["P3", "No Account & Co", "US", "", "USD"])
    ingest_pages(ws, [pages])
    tok = tmp / "tokens.csv"
    with tok.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=TOKEN_COLS)
        w.writeheader()
        w.writerows(tokens())
    ingest_tokens(ws, [tok])
    content = tmp / "content.jsonl"
    lines = [
        {"page_id": "P1", "key": "deals", "topic_title": EVIL_TOPIC,
         "message": {"text": "Hello " + EVIL}},
        {"page_id": "P2", "key": "news", "topic_title": "News",
         "message": {"text": "x" * 700 + " <script>too long</script>"}},
        {"page_id": "P3", "key": "news", "topic_title": "News",
         "message": {"attachment": {"type": "audio", "payload": {"url": "https://example.com/a.mp3"}}}},
    ]
    content.write_text("".join(json.dumps(c) + "\n" for c in lines), encoding="utf-8")
    ingest_content(ws, [content])
    audit = run_audit(ws, as_of=as_of, clock=CLOCK)
    plan = None
    if with_plan:
        path = tmp / "spec.toml"
        path.write_text(spec, encoding="utf-8")
        plan = make_plan(ws, path, as_of=as_of, clock=CLOCK)
    return audit, plan


def secrets(ws) -> list[str]:
    """Every raw token and PSID of the workspace."""
    out = []
    for token, psid in ws.db.conn.execute("SELECT token, psid FROM tokens"):
        out += [token] + ([psid] if psid else [])
    return out


URL_ATTRS = {"src", "href", "action", "poster", "data", "srcset", "xlink:href", "formaction", "background",
             "cite", "manifest", "ping"}


class _Tags(HTMLParser):
    """The real elements of a document (escaped text that looks like a tag is not one)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def parse_tags(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    p.close()
    return p


def external_refs(html: str) -> list[str]:
    """Everything that would make a browser fetch something: URL attributes other than #anchors
    and data:, url(...) or @import in CSS (style elements and style attributes)."""
    p = parse_tags(html)
    bad = []
    css = list(p.styles)
    for tag, attrs in p.tags:
        for k, v in attrs.items():
            if k in URL_ATTRS and v is not None and not (v.startswith("#") or v.startswith("data:")):
                bad.append(f"<{tag} {k}={v}>")
        if attrs.get("style"):
            css.append(attrs["style"])
    for text in css:
        bad += re.findall(r"url\(\s*['\"]?(?!data:|#)[^)]*\)", text)
        bad += re.findall(r"@import[^;]*", text)
    return bad


def embedded_json(html: str) -> str:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m, "no embedded report data"
    return m.group(1)

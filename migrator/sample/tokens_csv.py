"""tokens.csv for the sample: the partner's own export, times in mixed formats, a few bad rows.

Header (a contract): page_id,token,psid,topic_title,timezone,country,token_status,
user_token_status,token_expiry,created_at,next_eligible_at,last_sent_at. Each malformed row
has exactly one defect and a token that is not in truth.jsonl.
"""

from __future__ import annotations

import csv
import random
import time
from typing import IO

from migrator.sample.model import MalformedLine
from migrator.sample.rand import numeric_id

CSV_HEADER = ("page_id", "token", "psid", "topic_title", "timezone", "country", "token_status",
              "user_token_status", "token_expiry", "created_at", "next_eligible_at", "last_sent_at")
# Each kind is a reject: a bad required field (page_id, token) or a broken row. A bad optional
# field (a date, a status, a country) is not: ingest keeps that subscriber with a warning.
CSV_MALFORMED = ("missing_token", "bad_page_id", "negative_page_id", "token_bidi", "wrong_column_count")
FULLWIDTH_DIGITS = str.maketrans("0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19")


class TokensCsvWriter:
    """Writes tokens.csv row by row; counts rows and remembers the malformed lines."""

    def __init__(self, f: IO[str], rng: random.Random):
        self.w = csv.writer(f, lineterminator="\n")
        self.w.writerow(CSV_HEADER)
        self.rng = rng
        self.line = 1
        self.rows = 0
        self.malformed: list[MalformedLine] = []

    def fmt_time(self, ts: int | None) -> str:
        """A time as partners export it: ISO 8601 (two spellings), epoch s or epoch ms."""
        if ts is None:
            return ""
        r = self.rng.random()
        if r < 0.45:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
        if r < 0.55:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
        if r < 0.8:
            return str(ts)
        return str(ts * 1000)

    def row(self, page, token: str, psid: str, p, explicit: str | None, status: str, *,
            webhook: bool) -> None:
        """One token's row; `p` is its final profile (a snapshot is newer than any event)."""
        rng = self.rng
        country = explicit or ""
        if country == "GB" and rng.random() < 0.5:
            country = "UK"
        elif country and rng.random() < 0.1:
            country = country.lower()
        if webhook:
            st = ""  # the webhook history decides the status
        elif status == "active" and rng.random() < 0.15:
            st = ""
        else:
            st = status.capitalize() if rng.random() < 0.05 else status
        self.w.writerow((page.page_id, token, psid, p.topic_title, p.timezone or "", country, st,
                         p.user_token_status, self.fmt_time(p.token_expiry),
                         self.fmt_time(p.created_at), self.fmt_time(p.next_eligible_at),
                         self.fmt_time(p.last_sent_at)))
        self.line += 1
        self.rows += 1

    def malformed_row(self, page, kind: str) -> None:
        """A row ingest must reject, with exactly one thing wrong; its token is not in truth."""
        junk = numeric_id(len(self.malformed), 19, self.rng)  # 19 digits: never a real one
        row = [page.page_id, junk, "1000000000000001", "Weekly deals", "Asia/Manila", "", "active",
               "NOT_REFRESHED", "", "2024-03-01T10:00:00Z", "", ""]
        if kind == "missing_token":
            row[1] = ""
        elif kind == "bad_page_id":
            row[0] = str(page.page_id).translate(FULLWIDTH_DIGITS)  # looks right, is not ASCII
        elif kind == "negative_page_id":
            row[0] = f"-{page.page_id}"
        elif kind == "token_bidi":
            row[1] = junk + "\u202e"  # a right-to-left override hidden in the token
        elif kind == "wrong_column_count":
            row = row[:-1]
        self.w.writerow(row)
        self.line += 1
        self.malformed.append(MalformedLine(line=self.line, kind=kind))

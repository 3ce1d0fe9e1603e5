"""Fast streaming writers of large token inputs, for the ingest benchmarks.

`generate_sample` favours realism and a ground truth; these favour speed (a million rows in
a few seconds) while keeping realistic values: the sample's time zones and their mix, several
topics per person, timestamps in mixed formats, stop/resume in both spellings, out-of-order
and repeated deliveries. Lines are built from string templates (every value is plain ASCII,
so no JSON escaping is needed) and written in blocks; memory stays flat.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from migrator.sample.estate import FAR_EXPIRY, HISTORY_END, START
from migrator.sample.pages import TOPICS
from migrator.sample.tokens_csv import CSV_HEADER
from migrator.sample.geo import GEOS
from migrator.timeparse import DAY

_BLOCK = 4096
_PAGES = 50


def _zone_table(rng: random.Random, size: int = 4096) -> list[str]:
    """A table of zones drawn with the sample's weights (index it with random bits)."""
    zones = [z or "" for _, z, _, _ in GEOS]
    return rng.choices(zones, weights=[w for _, _, w, _ in GEOS], k=size)


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def write_tokens_csv(path: str | Path, n: int, seed: int = 1) -> dict:
    """Write a tokens CSV of `n` rows (header as in the sample). Returns counts."""
    rng = random.Random(f"bench-csv/{seed}")
    zones = _zone_table(rng)
    # about a third of the partner's rows know the country (spellings as partners write them)
    countries = [""] * 22 + ["US", "US", "BR", "IN", "DE", "GB", "UK", "JP", "mx", "ES"]
    titles = [t for _, t in TOPICS]
    pages = [str(100_000_000_000_000 + 7919 * k) for k in range(_PAGES)]
    span = HISTORY_END - START - 60 * DAY
    stopped = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(CSV_HEADER) + "\n")
        buf: list[str] = []
        for i in range(n):
            bits = rng.getrandbits(64)
            created = START + span * i // n + (bits & 0xFFFF)
            person = i * 7 // 10  # ~1.4 topics per person
            status = "stopped" if bits >> 16 & 31 == 0 else ("active" if bits >> 21 & 7 else "")
            stopped += status == "stopped"
            form = bits >> 24 & 3
            c_at = _iso(created) if form < 2 else (str(created) if form == 2 else str(created * 1000))
            expiry = "" if bits >> 26 & 1 else str(FAR_EXPIRY * 1000)
            sent = created + (bits >> 27 & 0xFFFFF)
            buf.append(f"{pages[person % _PAGES]},{10**19 + i * 104_723},"
                       f"{10**15 + person * 104_729},{titles[bits >> 47 & 7]},{zones[bits >> 50 & 4095]},"
                       f"{countries[bits >> 40 & 31]},{status},"
                       f"NOT_REFRESHED,{expiry},{c_at},{sent + 2 * DAY},{sent}\n")
            if len(buf) >= _BLOCK:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    return {"rows": n, "stopped": stopped}


def write_webhooks_jsonl(path: str | Path, n_events: int, seed: int = 2) -> dict:
    """Write `n_events` RN webhook events, one delivery per line. Returns counts.

    About 80% are first opt-ins of new tokens; the rest stop, resume or re-opt-in an earlier
    token. Deliveries are slightly out of timestamp order and 1% are repeated (the repeat is
    counted in `duplicates` and included in `n_events`).
    """
    rng = random.Random(f"bench-webhooks/{seed}")
    zones = _zone_table(rng)
    titles = [(k or "UPDATES", t) for k, t in TOPICS]
    statuses = ("STOP_NOTIFICATIONS", "STOP NOTIFICATIONS", "RESUME_NOTIFICATIONS",
                "RESUME NOTIFICATIONS")
    pages = [str(200_000_000_000_000 + 7919 * k) for k in range(_PAGES)]
    base_ms = START * 1000
    step = max(1, (HISTORY_END - START) * 1000 // max(1, n_events))
    tokens = duplicates = 0
    last = ""
    with open(path, "w", encoding="utf-8") as f:
        buf: list[str] = []
        for i in range(n_events):
            bits = rng.getrandbits(64)
            if last and bits & 127 == 0:
                buf.append(last)  # at-least-once delivery: the same delivery again
                duplicates += 1
                continue
            ts = base_ms + i * step - (bits >> 8 & 0x3FFFF)
            if tokens == 0 or bits >> 7 & 7 > 1:  # 6 in 8: a new token
                tok = tokens
                tokens += 1
                kind = "optin"
            else:
                tok = (bits >> 28) % tokens
                kind = statuses[bits >> 60 & 3] if bits >> 62 & 1 else "optin"
            page = pages[tok % _PAGES]
            key, title = titles[tok & 7]
            head = (f'{{"object":"page","entry":[{{"id":"{page}","time":{ts + 900},"messaging":[{{'
                    f'"sender":{{"id":"{10**15 + tok * 7 // 10 * 104_729}"}},"recipient":{{"id":"{page}"}},'
                    f'"timestamp":{ts},"optin":{{"type":"notification_messages","payload":"{key}",'
                    f'"title":"{title}","notification_messages_token":"{10**19 + tok * 104_723}"')
            if kind == "optin":
                zone = zones[bits >> 40 & 4095]
                tz = f',"notification_messages_timezone":"{zone}"' if zone else ""
                last = (f'{head}{tz},"token_expiry_timestamp":{FAR_EXPIRY * 1000},'
                        f'"user_token_status":"NOT_REFRESHED"}}}}]}}]}}\n')
            else:
                last = f'{head},"notification_messages_status":"{kind}"}}}}]}}]}}\n'
            buf.append(last)
            if len(buf) >= _BLOCK:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    return {"events": n_events, "tokens": tokens, "duplicates": duplicates}

"""Who the emulator can deliver to: subscribers from a workspace or a JSONL file.

JSONL: one `{"token", "page_id", "region", "opted_out"}` per line (+ optional psid, timezone,
topic_title), as `migrator sample` writes `subscribers.jsonl`. Workspace: table `tokens`
(region = tokens.country; opted out = status 'stopped' or Meta said so: mm_feedback.state 'opted_out').
Bad lines are skipped and counted, never fatal.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from migrator.errors import InputError


@dataclass(slots=True)
class Subscriber:
    token: str
    page_id: str
    region: str | None = None          # ISO alpha-2; None = unknown (treated as deliverable)
    opted_out: bool = False
    psid: str | None = None
    timezone: str | None = None
    topic_title: str | None = None
    created_at: int | None = None      # epoch seconds
    expired: bool = False
    wrong_region: bool = False         # learned earlier (mm_feedback.state='wrong_region')
    seq: int = 0                       # listing order
    token_expiry: int | None = None    # token_expiry_timestamp as the listing shows it (ms)
    last_organic_at: float | None = None  # last organic Page<->user thread activity (epoch s)


@dataclass
class LoadResult:
    subscribers: list[Subscriber] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _bool(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "y")
    return bool(v)


def subscriber_from_dict(d: dict) -> Subscriber:
    """One subscriber from a JSONL object; raises ValueError naming what is wrong."""
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    token = d.get("token")
    page_id = d.get("page_id")
    if not isinstance(token, str) or not token.strip():
        raise ValueError("missing token")
    if page_id is None or str(page_id).strip() == "":
        raise ValueError("missing page_id")
    region = d.get("region")
    region = str(region).strip().upper() if region else None
    if region == "UK":
        region = "GB"
    created = d.get("created_at")
    expiry, organic = d.get("token_expiry"), d.get("last_organic_at")
    return Subscriber(token=token.strip(), page_id=str(page_id).strip(), region=region,
                      opted_out=_bool(d.get("opted_out", False)),
                      psid=str(d["psid"]) if d.get("psid") is not None else None,
                      timezone=d.get("timezone"), topic_title=d.get("topic_title"),
                      created_at=int(created) if isinstance(created, (int, float)) else None,
                      token_expiry=int(expiry) if isinstance(expiry, (int, float)) else None,
                      last_organic_at=float(organic) if isinstance(organic, (int, float)) else None)


def load_subscribers_jsonl(path: str | Path) -> LoadResult:
    """Read a subscribers JSONL file (gzip detected); bad lines are returned in `rejected`."""
    p = Path(path)
    try:
        raw = p.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read subscribers: {exc.strerror}", path=str(p),
                         hint="give the subscribers.jsonl written by `migrator sample`") from None
    out = LoadResult()
    with raw:
        head = raw.read(2)
        raw.seek(0)
        fh = gzip.open(raw) if head == b"\x1f\x8b" else raw
        try:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    out.subscribers.append(subscriber_from_dict(json.loads(line)))
                except (ValueError, TypeError) as exc:
                    out.rejected.append((n, str(exc)))
        except (OSError, EOFError) as exc:
            raise InputError(f"unreadable subscribers file: {exc}", path=str(p)) from None
    return out


def load_subscribers_workspace(ws) -> LoadResult:
    """Every token in the workspace except those MM already called invalid."""
    out = LoadResult()
    sql = ("SELECT t.token, t.page_id, t.psid, t.timezone, t.topic_title, t.country, t.status, f.state, t.created_at "
           "FROM tokens t LEFT JOIN mm_feedback f ON f.token_id = t.id "
           "WHERE f.state IS NULL OR f.state != 'invalid' ORDER BY t.id")
    for token, page_id, psid, tz, topic, country, status, mm_state, created in ws.conn.execute(sql):
        if not page_id:
            out.rejected.append((0, f"token without page_id skipped"))
            continue
        out.subscribers.append(Subscriber(
            token=token, page_id=str(page_id), region=(country or None), psid=psid, timezone=tz,
            topic_title=topic, opted_out=(status == "stopped" or mm_state == "opted_out"),
            created_at=created, expired=(mm_state == "expired"), wrong_region=(mm_state == "wrong_region")))
    return out

"""`ingest receipts`: MM webhooks (echo, delivery, read, delivery_failed) settle the ledger.

Each line is a Page webhook delivery `{"object": "page", "entry": [{"changes": [{"field", "value"}]}]}`
(a bare `{"field", "value"}` change is accepted too). Keys are Meta's: `messenger_subscription_token`,
`message_id` (the campaign's message id), `marketing_message_tracking_id`, `timestamp` (ms).
An echo or delivery proves the send went out: an `unknown` (or still `planned`) row becomes `sent`,
so it is never sent twice. Deliveries and reads fill delivered_at / read_at. A delivery_failed
turns an unknown row into failed(delivery_failed). Events are counted like every ingest:
accepted, duplicates (already ingested), ignored (other fields, sends not in any ledger), rejected.
Runs are recorded in ingest_runs with kind `mm_receipts` (they describe sends, not the inventory,
so they do not make a plan stale).
"""

from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path

import orjson

from migrator.errors import InputError
from migrator.execute.ledger import transaction
from migrator.inventory.summary import FileSummary, IngestSummary

FIELDS = {"marketing_message_echoes": "echo", "marketing_message_deliveries": "delivery",
          "marketing_message_reads": "read", "marketing_message_delivery_failed": "delivery_failed"}
CHUNK = 2000


def _changes(obj):
    if isinstance(obj, dict) and "entry" in obj:
        for entry in obj.get("entry") or []:
            for ch in (entry or {}).get("changes") or []:
                yield ch
    elif isinstance(obj, dict) and "field" in obj and "value" in obj:
        yield obj
    else:
        raise ValueError("not a webhook delivery (no entry[].changes[] and no field/value)")


def _open(path: Path):
    with path.open("rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


def ingest_receipts(ws, paths, *, progress=None) -> IngestSummary:
    """Ingest MM webhook JSONL files; returns the counts per file."""
    conn = ws.conn
    summary = IngestSummary()
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise InputError("no such file", path=str(path), hint="give the webhooks JSONL file(s) to ingest")
        fs = FileSummary(path=str(path), format="webhooks")
        with transaction(conn):
            fs.run_id = conn.execute("INSERT INTO ingest_runs (kind, path, format, started_at) "
                                     "VALUES ('mm_receipts', ?, 'webhooks', ?)",
                                     (str(path), int(time.time()))).lastrowid
        pending: list[tuple] = []
        with _open(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                    changes = list(_changes(obj))
                except (orjson.JSONDecodeError, ValueError, AttributeError, TypeError) as exc:
                    _reject(conn, fs, path, lineno, f"unreadable webhook line: {exc}", line)
                    continue
                for ch in changes:
                    kind = FIELDS.get(ch.get("field")) if isinstance(ch, dict) else None
                    if kind is None:
                        fs.count("ignored")
                        continue
                    v = ch.get("value")
                    if not isinstance(v, dict) or not v.get("messenger_subscription_token") or not v.get("message_id"):
                        _reject(conn, fs, path, lineno, f"{ch.get('field')} without messenger_subscription_token "
                                                        "or message_id", line)
                        continue
                    pending.append((kind, v, lineno))
                if len(pending) >= CHUNK:
                    _apply(conn, fs, pending)
                    if progress:
                        progress(len(pending))
                    pending = []
        if pending:
            _apply(conn, fs, pending)
            if progress:
                progress(len(pending))
        with transaction(conn):
            conn.execute("UPDATE ingest_runs SET finished_at = ?, records = ?, accepted = ?, duplicates = ?, "
                         "ignored = ?, rejected = ? WHERE id = ?",
                         (int(time.time()), fs.records, fs.accepted, fs.duplicates, fs.ignored, fs.rejected,
                          fs.run_id))
        summary.files.append(fs)
    return summary


def _reject(conn, fs: FileSummary, path: Path, line: int, reason: str, raw: bytes) -> None:
    fs.count("rejected")
    excerpt = raw[:200].decode("utf-8", "replace")
    conn.execute("INSERT INTO rejects (run_id, path, line, reason, excerpt) VALUES (?, ?, ?, ?, ?)",
                 (fs.run_id, str(path), line, reason, excerpt))
    if len(fs.first_rejects) < 5:
        fs.first_rejects.append({"line": line, "reason": reason})


def _ts(v) -> int | None:
    try:
        t = int(v)
    except (TypeError, ValueError):
        return None
    return t // 1000 if t > 10**11 else t


def _apply(conn, fs: FileSummary, items: list[tuple]) -> None:
    with transaction(conn):
        for kind, v, _line in items:
            token, message_id = str(v["messenger_subscription_token"]), str(v["message_id"])
            tracking = v.get("marketing_message_tracking_id")
            key = hashlib.sha256(orjson.dumps([kind, token, message_id, tracking, v.get("timestamp")])).hexdigest()[:32]
            row = conn.execute("SELECT id FROM tokens WHERE token = ?", (token,)).fetchone()
            token_id = row[0] if row else None
            if conn.execute("SELECT 1 FROM exec_receipts WHERE event_key = ?", (key,)).fetchone():
                fs.count("duplicate")
                continue
            targets = conn.execute(
                "SELECT e.plan_id, e.send_id, e.state FROM exec_sends e JOIN exec_campaigns c "
                "ON c.plan_id = e.plan_id AND c.campaign_key = e.campaign_key "
                "WHERE e.token_id = ? AND c.message_id = ?", (token_id, message_id)).fetchall() if token_id else []
            conn.execute("INSERT INTO exec_receipts (event_key, field, token_id, message_id, tracking_id, ts_ms, "
                         "run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (key, kind, token_id, message_id, tracking, v.get("timestamp"), fs.run_id))
            if not targets:
                fs.count("ignored")
                continue
            ts = _ts(v.get("timestamp")) or int(time.time())
            for plan_id, send_id, state in targets:
                if kind in ("echo", "delivery", "read") and state in ("unknown", "planned"):
                    conn.execute("UPDATE exec_sends SET state = 'sent', reason = 'settled_by_receipt', "
                                 "tracking_id = COALESCE(?, tracking_id), sent_at = COALESCE(sent_at, ?), "
                                 "updated_at = ? WHERE plan_id = ? AND send_id = ?",
                                 (tracking, ts, int(time.time()), plan_id, send_id))
                if kind == "delivery":
                    conn.execute("UPDATE exec_sends SET delivered_at = MIN(COALESCE(delivered_at, ?), ?) "
                                 "WHERE plan_id = ? AND send_id = ?", (ts, ts, plan_id, send_id))
                elif kind == "read":
                    conn.execute("UPDATE exec_sends SET read_at = MIN(COALESCE(read_at, ?), ?), "
                                 "delivered_at = COALESCE(delivered_at, ?) WHERE plan_id = ? AND send_id = ?",
                                 (ts, ts, ts, plan_id, send_id))
                elif kind == "delivery_failed":
                    err = str(v.get("error_message") or "delivery failed")[:300]
                    conn.execute("UPDATE exec_sends SET delivery_failed = ?, "
                                 "state = CASE WHEN state = 'unknown' THEN 'failed' ELSE state END, "
                                 "reason = CASE WHEN state = 'unknown' THEN 'delivery_failed' ELSE reason END "
                                 "WHERE plan_id = ? AND send_id = ?", (err, plan_id, send_id))
            fs.count("accepted")

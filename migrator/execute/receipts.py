"""`ingest receipts`: MM webhooks (echo, delivery, read, delivery_failed) settle the ledger.

Each line is a Page webhook delivery `{"object": "page", "entry": [{"changes": [{"field", "value"}]}]}`
(a bare `{"field", "value"}` change is accepted too). Keys are Meta's: `messenger_subscription_token`,
`message_id` (the campaign's message id), `marketing_message_tracking_id`, `timestamp` (ms).

Receipts are facts: every event is kept in `exec_receipts` (once: redeliveries are duplicates)
whatever the state of the send it concerns, even when no ledger row matches yet, and then applied
by `settle_from_receipts` to every row it can settle (an echo, delivery or read turns a planned,
in-flight or unknown row into `sent`; a delivery_failed turns an unknown row into failed).
"Duplicate" means only "already stored": a stored receipt is applied again wherever it can settle
a row, at every ingest, recovery and re-send. Deliveries and reads fill delivered_at / read_at.

The bookkeeping is the inventory's (`migrator.inventory.ingest.Run`: an `ingest_runs` row of kind
`'receipts'`, counts and `rejects`; `open_text`: gzip by its magic number). Receipts describe sends,
not the inventory, so they never make a plan stale. Events are committed in chunks (not one
transaction per file, as inventory files are): a receipts file must not hold the workspace for
long while an executor is committing its results, and a receipt stored twice is harmless.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import orjson

from migrator.execute.ledger import settle_from_receipts
from migrator.inventory.ingest import Run
from migrator.inventory.sources import LongLine, open_text
from migrator.inventory.summary import IngestSummary

FIELDS = {"marketing_message_echoes": "echo", "marketing_message_deliveries": "delivery",
          "marketing_message_reads": "read", "marketing_message_delivery_failed": "delivery_failed"}
KIND = "receipts"
NEW = "temp.receipts_new"          # the event keys stored by the current chunk
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


def _ts_ms(v) -> int | None:
    """Meta's timestamp in ms (a value in seconds is scaled)."""
    try:
        t = int(v)
    except (TypeError, ValueError):
        return None
    return t if t > 10**11 else t * 1000


def ingest_receipts(ws, paths, *, progress=None, clock=time.time, encoding: str | None = None) -> IngestSummary:
    """Ingest MM webhook JSONL files (gzip too); returns the counts per file.

    `encoding`: the files' text encoding when it is not UTF-8/UTF-16 with a BOM (never guessed)."""
    conn = ws.conn
    summary = IngestSummary()
    for raw in paths:
        path = str(Path(raw))
        hasher = hashlib.sha256()
        fh = open_text(path, hasher=hasher, encoding=encoding)    # a missing or unreadable file is an InputError here
        with ws.transaction():
            run = Run(ws, kind=KIND, path=path, fmt="webhooks", sha=None, clock=clock)
        pending: list[tuple] = []
        with fh:
            for lineno, line in enumerate(fh.lines(), 1):   # a line is never held past MAX_LINE_CHARS
                if isinstance(line, LongLine):
                    run.reject(lineno, line.reason, line.head)
                    continue
                if not line.strip():
                    continue
                try:
                    changes = list(_changes(orjson.loads(line)))
                except (orjson.JSONDecodeError, ValueError, AttributeError, TypeError) as exc:
                    run.reject(lineno, f"unreadable webhook line: {exc}", line[:200])
                    continue
                if not changes:   # a delivery with no MM change in it (Messenger events): counted, not lost
                    run.summary.count("ignored")
                    continue
                for ch in changes:
                    kind = FIELDS.get(ch.get("field")) if isinstance(ch, dict) else None
                    if kind is None:
                        run.summary.count("ignored")
                        continue
                    v = ch.get("value")
                    if not isinstance(v, dict) or not v.get("messenger_subscription_token") or not v.get("message_id"):
                        run.reject(lineno, f"{ch.get('field')} without messenger_subscription_token "
                                           "or message_id", line[:200])
                        continue
                    pending.append((kind, v))
                if len(pending) >= CHUNK:
                    _apply(ws, run, pending, clock)
                    if progress:
                        progress(len(pending))
                    pending = []
        with ws.transaction():
            _store(conn, run, pending)
            settle_from_receipts(conn, now=int(clock()), new_receipts=NEW)
            _fill_delivery(conn, run.id)
            summary.files.append(run.finish(sha=hasher.hexdigest()))
        if progress and pending:
            progress(len(pending))
    return summary


def _apply(ws, run: Run, items: list[tuple], clock) -> None:
    with ws.transaction() as conn:
        _store(conn, run, items)
        settle_from_receipts(conn, now=int(clock()), new_receipts=NEW)


def _store(conn, run: Run, items: list[tuple]) -> None:
    """Keep each new event; count it accepted (it concerns a ledger send), ignored or duplicate.

    The keys of the events stored now go to NEW, from which they settle the rows they name."""
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {NEW.split('.')[1]} (event_key TEXT PRIMARY KEY)")
    conn.execute(f"DELETE FROM {NEW}")
    for kind, v in items:
        token, message_id = str(v["messenger_subscription_token"]), str(v["message_id"])
        tracking = v.get("marketing_message_tracking_id")
        ts = _ts_ms(v.get("timestamp"))
        key = hashlib.sha256(orjson.dumps([kind, token, message_id, tracking, v.get("timestamp")])).hexdigest()[:32]
        row = conn.execute("SELECT id FROM tokens WHERE token = ?", (token,)).fetchone()
        token_id = row[0] if row else None
        cur = conn.execute("INSERT OR IGNORE INTO exec_receipts (event_key, field, token_id, message_id, "
                           "tracking_id, ts_ms, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (key, kind, token_id, message_id, tracking, ts, run.id))
        if cur.rowcount == 0:
            run.summary.count("duplicate")
            continue
        conn.execute(f"INSERT OR IGNORE INTO {NEW} VALUES (?)", (key,))
        known = token_id is not None and conn.execute(
            "SELECT 1 FROM exec_sends e JOIN exec_campaigns c ON c.plan_id = e.plan_id "
            "AND c.campaign_key = e.campaign_key WHERE e.token_id = ? AND c.message_id = ? LIMIT 1",
            (token_id, message_id)).fetchone()
        run.summary.count("accepted" if known else "ignored")


def _fill_delivery(conn, run_id: int) -> None:
    """delivered_at / read_at / delivery_failed from this run's receipts (earliest time wins)."""
    conn.execute("""
        WITH x AS (
            SELECT e.plan_id, e.send_id,
                   MIN(CASE WHEN r.field IN ('delivery', 'read') THEN r.ts_ms END) / 1000 AS delivered,
                   MIN(CASE WHEN r.field = 'read' THEN r.ts_ms END) / 1000 AS was_read,
                   MAX(r.field = 'delivery_failed') AS failed
            FROM exec_receipts r
            JOIN exec_campaigns c ON c.message_id = r.message_id
            JOIN exec_sends e ON e.plan_id = c.plan_id AND e.campaign_key = c.campaign_key AND e.token_id = r.token_id
            WHERE r.run_id = ? AND r.field IN ('delivery', 'read', 'delivery_failed')
            GROUP BY e.plan_id, e.send_id)
        UPDATE exec_sends SET
            delivered_at = CASE WHEN x.delivered IS NULL THEN delivered_at
                                ELSE MIN(COALESCE(delivered_at, x.delivered), x.delivered) END,
            read_at = CASE WHEN x.was_read IS NULL THEN read_at ELSE MIN(COALESCE(read_at, x.was_read), x.was_read) END,
            delivery_failed = CASE WHEN x.failed THEN COALESCE(delivery_failed, 'delivery failed') ELSE delivery_failed END
        FROM x WHERE exec_sends.plan_id = x.plan_id AND exec_sends.send_id = x.send_id
    """, (run_id,))

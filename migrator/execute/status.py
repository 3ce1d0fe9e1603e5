"""`migrator status`: where every plan stands, per campaign and batch, from the ledger.

Counts: planned (incl. in flight), sent, skipped, failed, unknown, delivered, read, and spend
(estimated: sent x the campaign's cost per message, minor units; Meta bills delivered messages).
"""

from __future__ import annotations

from migrator.execute.lock import read_lock, staleness

_COLS = ("planned", "in_flight", "sent", "skipped", "failed", "unknown")


def _blank() -> dict:
    return {**{k: 0 for k in _COLS}, "delivered": 0, "read": 0}


def execution_status(ws, plan_id: str | None = None) -> dict:
    """{"plans": [...], "lock": {...} | None} for every plan in the workspace (or one)."""
    from migrator.execute.engine import execution_staleness
    from migrator.plan import SavedPlan

    conn = ws.conn
    sql = "SELECT plan_id, body FROM plans" + (" WHERE plan_id = ?" if plan_id else "") + " ORDER BY created_at"
    plans = []
    for pid, body in conn.execute(sql, (plan_id,) if plan_id else ()).fetchall():
        plan = SavedPlan.model_validate_json(body)
        cost = {c.key: c.cost_per_message for c in plan.campaigns}
        currency = {c.key: c.currency for c in plan.campaigns}
        camps = {c.key: {"key": c.key, "name": c.name, "message_id": None, "state": "not_started", "reason": None,
                         "currency": c.currency, **_blank(), "spend": 0} for c in plan.campaigns}
        batches: dict[int, dict] = {}
        total = _blank()
        has_ledger = conn.execute("SELECT status FROM exec_plans WHERE plan_id = ?", (pid,)).fetchone()
        if has_ledger:
            for key, mid, state, reason in conn.execute(
                    "SELECT campaign_key, message_id, state, COALESCE(reason, error) FROM exec_campaigns "
                    "WHERE plan_id = ?", (pid,)):
                if key in camps:
                    camps[key].update(message_id=mid, state=state, reason=reason)
            for key, batch, state, n, dl, rd in conn.execute(
                    "SELECT campaign_key, batch, state, COUNT(*), COUNT(delivered_at), COUNT(read_at) "
                    "FROM exec_sends WHERE plan_id = ? GROUP BY campaign_key, batch, state", (pid,)):
                for d in (camps.setdefault(key, {"key": key, **_blank(), "spend": 0}),
                          batches.setdefault(batch, {"batch": batch, **_blank()}), total):
                    d[state] += n
                    d["delivered"] += dl
                    d["read"] += rd
                if state == "sent":
                    camps[key]["spend"] += n * cost.get(key, 0)
        else:
            for b in plan.batches:
                batches[b.batch] = {"batch": b.batch, **_blank(), "planned": b.sends}
            for c in plan.campaigns:
                camps[c.key]["planned"] = c.sends
            total["planned"] = plan.sends
        spend: dict[str, int] = {}
        for k, c in camps.items():
            spend[currency.get(k, "?")] = spend.get(currency.get(k, "?"), 0) + c["spend"]
        days = {b.batch: b.day for b in plan.batches}
        plans.append({
            "plan_id": pid, "name": plan.name, "status": has_ledger[0] if has_ledger else "not_started",
            "stale": execution_staleness(ws, plan), **total, "spend": spend,
            "campaigns": list(camps.values()),
            "batches": [{**b, "day": days.get(b["batch"])} for _, b in sorted(batches.items())],
        })
    info = read_lock(conn)
    lock = None
    if info is not None:
        import time

        lock = {**info.to_json(), "stale": staleness(info, now=time.time())}
    return {"plans": plans, "lock": lock}

"""`migrator status`: where every plan stands, per campaign and batch, from the ledger.

Counts: to send (planned, waiting for its turn), in flight, sent, skipped, failed, unknown,
delivered, read, and spend (accepted: sent x the campaign's cost per message; `spend` in minor units,
`spend_figures` / `spend_figure` in major units with the basis, as the reports say it;
Meta bills delivered messages). The executor lock is checked against its process: a lock whose
process is gone on this host is reported as "interrupted (process gone)", not as running.
Typed results (dataclasses); `to_json()` gives the `--json` shape (`planned` kept beside `to_send`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from migrator.execute.ledger import to_send
from migrator.execute.lock import LockInfo, holder_state, read_lock, staleness
from migrator.money import figure

STATES = ("planned", "in_flight", "sent", "skipped", "failed", "unknown")


@dataclass
class Counts:
    to_send: int = 0          # ledger state `planned`: still to send
    in_flight: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    unknown: int = 0
    delivered: int = 0
    read: int = 0

    def add(self, state: str, n: int, delivered: int = 0, read: int = 0) -> None:
        name = "to_send" if state == "planned" else state
        setattr(self, name, getattr(self, name) + n)
        self.delivered += delivered
        self.read += read

    def to_json(self) -> dict:
        d = asdict(self)
        d["planned"] = self.to_send     # the JSON key of earlier versions
        return d


@dataclass
class CampaignStatus(Counts):
    key: str = ""
    name: str = ""
    message_id: str | None = None
    state: str = "not_started"
    reason: str | None = None
    currency: str | None = None
    spend: int = 0


@dataclass
class BatchStatus(Counts):
    batch: int = 0
    day: str | None = None


@dataclass
class PlanStatus(Counts):
    plan_id: str = ""
    name: str = ""
    status: str = "not_started"       # not_started | running | waiting | done | stopped | fatal | interrupted...
    stale: list[str] = field(default_factory=list)
    spend: dict[str, int] = field(default_factory=dict)
    campaigns: list[CampaignStatus] = field(default_factory=list)
    batches: list[BatchStatus] = field(default_factory=list)

    def to_json(self) -> dict:
        d = Counts.to_json(self)
        # `spend` stays minor units per currency (the contract); `spend_figures` says the same figure as
        # the reports do: major units with the currency's own decimals, and its basis ("accepted")
        d.update(plan_id=self.plan_id, name=self.name, status=self.status, stale=self.stale, spend=self.spend,
                 spend_figures=[figure(n, cur, "accepted") for cur, n in self.spend.items()],
                 campaigns=[{**c.to_json(), "key": c.key, "name": c.name, "message_id": c.message_id,
                             "state": c.state, "reason": c.reason, "currency": c.currency, "spend": c.spend,
                             "spend_figure": figure(c.spend, c.currency, "accepted") if c.currency else None}
                            for c in self.campaigns],
                 batches=[{**b.to_json(), "batch": b.batch, "day": b.day} for b in self.batches])
        return d


@dataclass(frozen=True)
class LockStatus(LockInfo):
    """The lock row (`LockInfo`) and what `status` can tell about its holder."""

    state: str                        # running | interrupted (process gone) | stale (no heartbeat)
    stale: str | None                 # why it may be taken over, if it may

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class ExecutionStatus:
    plans: list[PlanStatus]
    lock: LockStatus | None

    def to_json(self) -> dict:
        return {"plans": [p.to_json() for p in self.plans], "lock": self.lock.to_json() if self.lock else None}


def execution_status(ws, plan_id: str | None = None) -> ExecutionStatus:
    """Every plan in the workspace (or one), with its campaigns, batches and the executor lock."""
    from migrator.plan import SavedPlan, plan_staleness

    conn = ws.conn
    now = time.time()
    info = read_lock(conn)
    lock = None
    if info is not None:
        lock = LockStatus(info.owner, info.pid, info.host, info.started_at, info.heartbeat_at, info.plan_id,
                          holder_state(info, now=now), staleness(info, now=now))
    sql = "SELECT plan_id, body FROM plans" + (" WHERE plan_id = ?" if plan_id else "") + " ORDER BY created_at"
    plans = []
    for pid, body in conn.execute(sql, (plan_id,) if plan_id else ()).fetchall():
        plan = SavedPlan.model_validate_json(body)
        cost = {c.key: c.cost_per_message for c in plan.campaigns}
        camps = {c.key: CampaignStatus(key=c.key, name=c.name, currency=c.currency) for c in plan.campaigns}
        days = {b.batch: b.day for b in plan.batches}
        batches: dict[int, BatchStatus] = {}
        ps = PlanStatus(plan_id=pid, name=plan.name, stale=plan_staleness(ws, plan))
        row = conn.execute("SELECT status FROM exec_plans WHERE plan_id = ?", (pid,)).fetchone()
        if row:
            ps.status = row[0]
            for key, mid, state, reason in conn.execute(
                    "SELECT campaign_key, message_id, state, COALESCE(reason, error) FROM exec_campaigns "
                    "WHERE plan_id = ?", (pid,)):
                c = camps.setdefault(key, CampaignStatus(key=key, name=key))
                c.message_id, c.state, c.reason = mid, state, reason
            # the counters the ledger's triggers keep (store/schema_execute.py COUNTS_DDL): a few
            # rows per batch, where a GROUP BY of the ledger took 15 s at 4.9M sends
            for key, batch, state, n, dl, rd in conn.execute(
                    "SELECT campaign_key, batch, state, n, delivered, read FROM exec_send_counts "
                    "WHERE plan_id = ? AND n > 0", (pid,)):
                c = camps.setdefault(key, CampaignStatus(key=key, name=key))
                b = batches.setdefault(batch, BatchStatus(batch=batch, day=days.get(batch)))
                for d in (c, b, ps):
                    d.add(state, n, dl, rd)
                if state == "sent":
                    c.spend += n * cost.get(key, 0)
            if ps.status == "running" and (lock is None or lock.plan_id != pid or lock.state != "running"):
                ps.status = "interrupted (process gone)"
        else:
            for b in plan.batches:
                batches[b.batch] = BatchStatus(batch=b.batch, day=b.day, to_send=b.sends)
            for c in plan.campaigns:
                camps[c.key].to_send = c.sends
            ps.to_send = to_send(conn, pid, plan.sends)
        for c in camps.values():
            cur = c.currency or "?"
            ps.spend[cur] = ps.spend.get(cur, 0) + c.spend
        ps.campaigns = list(camps.values())
        ps.batches = [b for _, b in sorted(batches.items())]
        plans.append(ps)
    return ExecutionStatus(plans=plans, lock=lock)

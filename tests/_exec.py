"""Helpers for the executor tests: a planned estate and the in-process emulator with a virtual clock."""

from __future__ import annotations

import asyncio
import json

from migrator.emulator import EmulatorTransport, VirtualClock, build_emulator_app
from migrator.execute import execute_plan
from migrator.plan import write_plan
from _plan import estate, plan, tok, ts

AFTER_DAY_ONE = ts("2026-03-02T20:00:00Z")   # 15:00 in New York: every send of a small plan's first day is due, inside its window


def planned(ws, tmp, n=20, *, extra="", tokens=None, base=None, **kw):
    """An audited estate of `n` US tokens on page P1 (act 111) and its saved plan (file in tmp)."""
    estate(ws, tmp / "in", tokens if tokens is not None else [tok(i) for i in range(n)], **kw)
    p = plan(ws, tmp / "spec", extra, **({"base": base} if base is not None else {}))
    write_plan(p, tmp / "plan.json")
    return p


class Emu:
    """The emulator app on a virtual clock, loaded with the workspace's tokens."""

    def __init__(self, ws, *, start=AFTER_DAY_ONE, subscribers=None, webhooks=None, **cfg):
        self.clock = VirtualClock(start)
        self.app, _ = build_emulator_app(subscribers=subscribers, workspace=ws, clock=self.clock,
                                         webhooks_path=webhooks, **{"warmup_seconds": 0, **cfg})
        self.emulator = self.app.state.emulator

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    def transport(self):
        return EmulatorTransport(self.app)

    def run(self, ws, plan, *, transport=None, **kw):
        return execute_plan(ws, plan, execute=kw.pop("execute", True), transport=transport or self.transport(),
                            base_url="http://emulator.test", access_token="sys-token-SECRET",
                            clock=self.clock, sleep=self.sleep, **kw)

    def accepted(self) -> list:
        return list(self.emulator.state.sends)


def ledger(ws, plan_id):
    return {r[0]: r[1] for r in ws.conn.execute("SELECT state, COUNT(*) FROM exec_sends WHERE plan_id = ? "
                                                "GROUP BY state", (plan_id,))}


def jsonl(path, objs):
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path

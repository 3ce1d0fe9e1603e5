"""The producer does not ask a campaign with nothing due again and again (loop.Run._idle): these check
that such a campaign is still asked again whenever a row of it can be due, in the same run.

In-process emulator on a virtual clock; the other connection is a second SQLite connection.
"""

from __future__ import annotations

from migrator.execute import execute_plan
from migrator.store.workspace import open_workspace
from _exec import Emu, ledger, planned
from test_execute_run import _Inject, _two_page_plan

LATER = {"code": 2300055, "message": "Cannot send now, retry in about 30 min",
         "error_data": {"remaining_seconds": 1800}}


def _run(emu, ws, plan, transport, sleep=None, **kw):
    return execute_plan(ws, plan, execute=True, transport=transport, base_url="http://emulator.test",
                        access_token="sys-token-SECRET", clock=emu.clock, sleep=sleep or emu.sleep, **kw)


def test_a_row_released_while_its_campaign_has_nothing_due_is_sent_in_the_same_run(ws, tmp_path):
    # two pages: P1's rows are claimed first; one of them is told "later" while P2 still sends
    p = _two_page_plan(ws, tmp_path, budget_line="daily_budget = 100000")
    emu = Emu(ws)
    t0 = emu.clock()
    s = _run(emu, ws, p, _Inject(emu.transport(), LATER, {2}), concurrency=1)
    assert s.sent == 20 and s.rescheduled == 1 and s.outcome == "done"
    assert ledger(ws, p.plan_id) == {"sent": 20}
    assert emu.clock() - t0 >= 1800          # it went once its time came, not before
    sent = [x.token for x in emu.accepted()]
    assert len(sent) == len(set(sent)) == 20


class _CommitBefore(_Inject):
    """The emulator; before send request number `at` goes, `commit` runs (another connection)."""

    def __init__(self, inner, at: int, commit):
        super().__init__(inner, LATER, set())
        self.commit_at, self.commit, self.sends = at, commit, 0

    async def handle_async_request(self, request):
        if request.url.path.endswith("/messages"):
            self.sends += 1
            if self.sends == self.commit_at:
                self.commit()
        return await super().handle_async_request(request)


def test_a_row_another_connection_makes_due_is_claimed_while_other_campaigns_send(ws, tmp_path):
    # P1's first token got an MM an hour ago: Meta answers 2300035 and its row waits ~11 h (P1 has
    # nothing else due) while P2 sends. Another connection makes that row due again mid-way through
    # P2: the run takes it at its next claim (SQLite's data_version says another connection wrote),
    # not 11 h later.
    p = _two_page_plan(ws, tmp_path, budget_line="daily_budget = 100000")
    emu = Emu(ws)
    first = "TOKEN000000SECRET"
    emu.emulator.state.last_sent[first] = emu.clock() - 3600
    t0 = emu.clock()

    def commit():
        emu.emulator.state.last_sent[first] = emu.clock() - 30 * 86400     # (Meta would take it now)
        other = open_workspace(ws.path)
        try:
            with other.transaction() as conn:
                conn.execute("UPDATE exec_sends SET not_before = ? WHERE state = 'planned' AND not_before > ?",
                             (int(emu.clock()), int(emu.clock())))
                assert conn.execute("SELECT changes()").fetchone()[0] == 1
        finally:
            other.close()

    transport = _CommitBefore(emu.transport(), 14, commit)
    s = _run(emu, ws, p, transport, concurrency=1, commit_interval=0)   # the release is committed at once
    assert s.sent == 20 and s.rescheduled == 1 and ledger(ws, p.plan_id) == {"sent": 20}, s.reasons
    assert emu.clock() - t0 < 3600           # never waited for the old time
    assert transport.sends == 21

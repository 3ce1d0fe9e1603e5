"""Against real processes: SIGINT stops cleanly; the README's recovery procedure, followed between
SIGKILLs of the executor, an emulator crash, a network cut and an `unlock` against a live run, ends
with every planned send accepted at most once and the ledger agreeing with Meta's own record."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import httpx
import pytest

from _exec import planned
from _plan import ALL_DAY_SPEC
from conftest import webhook

# real processes and wall-clock waits: CI runs these (MIGRATOR_TEST_PROFILE=ci)
pytestmark = pytest.mark.slow


@pytest.fixture
def served(ws, tmp_path):
    """`migrator emulator serve` on a free port, loaded with the planned workspace's tokens."""
    p = planned(ws, tmp_path, 240, extra="batch_size = 60", base=ALL_DAY_SPEC)
    hooks = tmp_path / "hooks.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "--db", str(ws.path), "emulator", "serve",
                             "--port", "0", "--warmup", "0", "--webhooks", str(hooks)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, proc.stderr.read()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        yield {"url": f"http://127.0.0.1:{port}", "hooks": hooks, "plan": p}
    finally:
        proc.terminate()
        proc.wait(10)


def _executor(ws, tmp_path, url, *extra, rate=400):
    env = {**os.environ, "MIGRATOR_ACCESS_TOKEN": "sys-user-token-SECRET"}
    env.pop("MIGRATOR_DB", None)
    return subprocess.Popen([sys.executable, "-m", "migrator", "--db", str(ws.path), "execute",
                             str(tmp_path / "plan.json"), "--execute", "--base-url", url, "--concurrency", "8",
                             "--rate", str(rate), "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _emulator_sends(url) -> list[dict]:
    out, offset = [], 0
    while True:
        page = httpx.get(f"{url}/_emulator/sends", params={"offset": offset, "limit": 5000}).json()
        out += page["data"]
        offset += len(page["data"])
        if not page["data"] or offset >= page["count"]:
            return out


def _unsent(ws, plan_id) -> list[tuple[str, str, str]]:
    """(token, page, psid) of the plan's sends the ledger has not recorded as sent."""
    return [tuple(r) for r in ws.conn.execute(
        "SELECT t.token, t.page_id, t.psid FROM exec_sends e JOIN tokens t ON t.id = e.token_id "
        "WHERE e.plan_id = ? AND e.state != 'sent' ORDER BY e.send_id", (plan_id,))]


def _planned_tokens(ws, plan_id) -> list[str]:
    return [r[0] for r in ws.conn.execute("SELECT t.token FROM plan_sends s JOIN tokens t ON t.id = s.token_id "
                                          "WHERE s.plan_id = ?", (plan_id,))]


def test_sigint_finishes_in_flight_commits_and_prints_the_resume_command(ws, tmp_path, served):
    proc = _executor(ws, tmp_path, served["url"], rate=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and httpx.get(f"{served['url']}/_emulator/sends",
                                                    params={"limit": 1}).json()["count"] < 20:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err           # interrupted, not done: 128 + SIGINT
    summary = json.loads(out)
    assert summary["outcome"] == "interrupted" and 0 < summary["sent"] < 240 and summary["signal"] == "SIGINT"
    assert "to resume: migrator --db" in err and "--execute" in err
    assert summary["resume_command"].startswith("migrator --db")
    states = dict(ws.conn.execute("SELECT state, COUNT(*) FROM exec_sends GROUP BY state").fetchall())
    assert states.get("in_flight", 0) == 0 and states.get("unknown", 0) == 0   # nothing left in doubt
    assert states["sent"] == summary["sent"] == len(_emulator_sends(served["url"]))
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_lock").fetchone()[0] == 0
    proc = _executor(ws, tmp_path, served["url"], rate=2000)
    out, err = proc.communicate(timeout=60)
    assert json.loads(out)["outcome"] == "done", err
    sends = _emulator_sends(served["url"])
    assert len(sends) == 240 == len({s["token"] for s in sends})


SEEDS = [int(x) for x in os.environ.get("CHAOS_SEEDS", "11,23,37").split(",")]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _EmulatorProcess:
    """`migrator emulator serve` on a fixed port with durable state beside its webhooks file."""

    def __init__(self, ws, hooks, port):
        self.ws, self.hooks, self.port = ws, hooks, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if k != "MIGRATOR_DB"}
        self.proc = subprocess.Popen([sys.executable, "-m", "migrator", "--db", str(self.ws.path), "emulator", "serve",
                                      "--port", str(self.port), "--warmup", "0", "--webhooks", str(self.hooks)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        assert "listening on" in line, self.proc.stderr.read()

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def flush(self):
        httpx.post(f"{self.url}/_emulator/flush", timeout=10)

    def state(self) -> dict:
        return httpx.get(f"{self.url}/_emulator/state", timeout=10).json()


def _wait_for_lock(ws, proc) -> None:
    pid = proc.pid
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = ws.conn.execute("SELECT pid FROM exec_lock").fetchone()
        if row and row[0] == pid:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError(f"executor {pid} never took the lock")


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_the_recovery_procedure_keeps_every_send_exactly_once(ws, tmp_path, cli, seed):
    """After each kill -9: flush the webhooks, `migrator ingest receipts` (sometimes twice, sometimes
    while the next run is going), run again; once `--resend-unknown`. Meanwhile the emulator is
    killed and restarted, the network is cut, and `migrator unlock` is tried against a live run."""
    rng = random.Random(seed)
    plan = planned(ws, tmp_path, 240, extra="batch_size = 60", base=ALL_DAY_SPEC)
    hooks = tmp_path / "hooks.jsonl"
    emu = _EmulatorProcess(ws, hooks, _free_port())
    emu.start()
    events = ["emulator_crash", "network_cut", None]
    rng.shuffle(events)
    events.insert(0, "unlock")           # while most of the plan is still to send: the run is live
    ingest_later = False
    stopped_at: dict[str, float] = {}         # token -> when its stop was committed (wall clock)
    try:
        for event in events:
            proc = _executor(ws, tmp_path, emu.url, "--resend-unknown", rate=rng.choice((60, 120)))
            if ingest_later:                  # receipts ingested while this run is going
                assert cli("ingest", "receipts", hooks).exit_code == 0
            time.sleep(rng.uniform(0.5, 1.1))
            if event == "unlock":
                _wait_for_lock(ws, proc)
                r = cli("unlock", "--yes")
                assert r.exit_code == 1 and "alive" in r.output, r.output
                assert ws.conn.execute("SELECT COUNT(*) FROM exec_lock").fetchone()[0] == 1
            elif event == "emulator_crash":
                emu.kill()
                emu.start()                   # same state file: it remembers every campaign and send
            elif event == "network_cut":
                emu.kill()
                time.sleep(rng.uniform(0.8, 1.5))   # the executor's requests are refused meanwhile
                emu.start()
            time.sleep(rng.uniform(0.1, 0.5))
            proc.kill()                       # SIGKILL: no cleanup at all
            proc.wait(10)
            # the README's recovery procedure: receipts first, then run the same command again
            emu.flush()
            assert cli("ingest", "receipts", hooks).exit_code == 0
            if rng.random() < 0.4:
                assert cli("ingest", "receipts", hooks).exit_code == 0     # twice: nothing changes
            ingest_later = rng.random() < 0.5
            # the day's opt-outs: a few subscribers still to send stop; after this commit no send
            # may reach them, and the same command must still resume the plan
            left = [t for t in _unsent(ws, plan.plan_id) if t[0] not in stopped_at]
            batch = rng.sample(left, min(len(left), rng.randint(3, 8)))
            if batch:
                stop_file = tmp_path / f"stops-{len(stopped_at)}.jsonl"
                now_ms = int(time.time() * 1000)
                stop_file.write_text("".join(json.dumps(webhook(page, psid, token, now_ms + i,
                                                                status="STOP_NOTIFICATIONS")) + "\n"
                                             for i, (token, page, psid) in enumerate(batch)))
                r = cli("ingest", "tokens", stop_file)
                assert r.exit_code == 0, r.output
                committed = time.time()
                stopped_at.update({token: committed for token, _, _ in batch})
        # finish: run to the end, ingest, re-send what receipts say never went, ingest again
        # a margin under the 60 s minimum is legal only against a loopback --base-url: the emulator
        # writes each echo as it accepts the send, and every one is flushed and ingested just above
        for extra in ((), ("--resend-unknown", "--receipt-margin", "1")):
            proc = _executor(ws, tmp_path, emu.url, *extra, rate=2000)
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err
            assert json.loads(out)["outcome"] == "done"
            emu.flush()
            assert cli("ingest", "receipts", hooks).exit_code == 0
        emulator_sends = _emulator_sends(emu.url)
        accepted = [s["token"] for s in emulator_sends]
        errors = emu.state()["errors"]
    finally:
        emu.kill()
    late = [(s["token"], s["time"]) for s in emulator_sends
            if s["token"] in stopped_at and s["time"] >= stopped_at[s["token"]]]
    assert not late, f"sent to a subscriber after their stop was committed: {late}"
    assert stopped_at, "no opt-out was ingested between kills"
    opted = {r[0] for r in ws.conn.execute(
        "SELECT t.token FROM exec_sends e JOIN tokens t ON t.id = e.token_id "
        "WHERE e.state = 'skipped' AND e.reason = 'opted_out_during_run'")}
    assert set(stopped_at) - set(accepted) <= opted    # every stop not beaten by its send was skipped
    planned_tokens = set(_planned_tokens(ws, plan.plan_id))
    assert len(accepted) == len(set(accepted)), "a planned send was accepted twice"
    assert set(accepted) <= planned_tokens
    assert errors.get("2300035", 0) == 0, "a send already accepted was sent again (refused by the 12 h cadence)"
    ledger_sent = {r[0] for r in ws.conn.execute(
        "SELECT t.token FROM exec_sends e JOIN tokens t ON t.id = e.token_id WHERE e.state = 'sent'")}
    assert ledger_sent == set(accepted)       # the ledger's sent is exactly what Meta accepted
    states = dict(ws.conn.execute("SELECT state, COUNT(*) FROM exec_sends GROUP BY state").fetchall())
    assert states.get("in_flight", 0) == 0
    settled = ws.conn.execute("SELECT COUNT(*) FROM exec_sends WHERE reason = 'settled_by_receipt'").fetchone()[0]
    resent = ws.conn.execute("SELECT COUNT(*) FROM exec_sends WHERE resend_check LIKE 'resent:%'").fetchone()[0]
    print(f"chaos seed {seed}: {len(accepted)} accepted once each, ledger {states}, {settled} settled by "
          f"receipts, {resent} re-sent as safe")

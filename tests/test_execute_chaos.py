"""Against a real emulator process: SIGINT stops cleanly; SIGKILL at random points never duplicates or loses."""

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

from tests._exec import planned


@pytest.fixture
def served(ws, tmp_path):
    """`migrator emulator serve` on a free port, loaded with the planned workspace's tokens."""
    p = planned(ws, tmp_path, 240, extra="batch_size = 60")
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
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["outcome"] == "interrupted" and 0 < summary["sent"] < 240
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


def test_chaos_sigkill_at_random_points_then_resume_and_settle(ws, tmp_path, served):
    url, plan = served["url"], served["plan"]
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "7")))
    for _ in range(4):
        proc = _executor(ws, tmp_path, url, rate=50)
        time.sleep(rng.uniform(0.5, 1.8))      # startup, campaign setup or mid-batch
        proc.kill()                             # SIGKILL: no cleanup at all
        proc.wait(10)
    # resume until the plan has nothing left to send (stale lock of the killed process is taken over)
    proc = _executor(ws, tmp_path, url, rate=2000)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    first = json.loads(out)
    assert first["outcome"] == "done"
    print("chaos: recovered unknown", first["recovered_unknown"], "sent by resume", first["sent"])
    httpx.post(f"{url}/_emulator/flush")
    env = {**os.environ}
    env.pop("MIGRATOR_DB", None)
    r = subprocess.run([sys.executable, "-m", "migrator", "--db", str(ws.path), "ingest", "receipts",
                        str(served["hooks"]), "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    # what receipts could not settle never reached Meta: now it is safe to send those
    proc = _executor(ws, tmp_path, url, "--resend-unknown", rate=2000)
    out, err = proc.communicate(timeout=90)
    last = json.loads(out)
    assert last["outcome"] == "done" and last["ledger"]["unknown"] == 0, err
    print("chaos: receipts accepted", json.loads(r.stdout)["accepted"], "resent", last["resent_unknown"])
    sends = _emulator_sends(url)
    tokens = [s["token"] for s in sends]
    planned_tokens = _planned_tokens(ws, plan.plan_id)
    assert sorted(tokens) == sorted(planned_tokens)          # every planned send exactly once, nothing else
    assert len(httpx.get(f"{url}/_emulator/campaigns").json()["data"]) == 1   # no twin campaign
    states = dict(ws.conn.execute("SELECT state, COUNT(*) FROM exec_sends GROUP BY state").fetchall())
    assert states == {"sent": 240}

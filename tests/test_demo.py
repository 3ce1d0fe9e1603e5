"""`migrator demo`: the whole path on the sample estate, as a new user runs it."""

import json
import re
import sqlite3

from click.testing import CliRunner

from migrator.cli import main


def test_demo_writes_everything_and_sends_each_planned_token_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATOR_DB", raising=False)
    r = CliRunner().invoke(main, ["demo", "-o", "out", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    out = tmp_path / "out"
    for name in ("plan.json", "audit.html", "readiness.html", "execution.html", "migration.db"):
        assert (out / name).is_file(), name
    assert not (tmp_path / "migration.db").exists()      # the demo keeps its workspace in DIR
    assert set(res["reports"]) == {"audit", "readiness", "execution"}

    conn = sqlite3.connect(out / "migration.db")
    states = dict(conn.execute("SELECT state, COUNT(*) FROM exec_sends GROUP BY state"))
    planned = conn.execute("SELECT COUNT(*) FROM plan_sends").fetchone()[0]
    assert sum(states.values()) == planned > 0
    assert states.get("sent", 0) > 0 and "in_flight" not in states and "planned" not in states
    # echoes ingested back: every sent row was echoed (delivered) by the emulator
    assert conn.execute("SELECT COUNT(*) FROM exec_sends WHERE state='sent' AND delivered_at IS NULL"
                        ).fetchone()[0] == 0
    raw = [t for (t,) in conn.execute("SELECT token FROM tokens")]
    conn.close()
    texts = [(out / n).read_text() for n in ("plan.json", "audit.html", "readiness.html", "execution.html")]
    assert not any(t in text for t in raw for text in texts)
    # the sample's wrong-region refusals are explained as such, not as something to fix
    failed = states.get("failed", 0)
    execution = (out / "execution.html").read_text()
    assert failed > 0 and "cannot receive MM" in execution and "fix the payload" not in execution


def test_demo_twice_tells_the_same_story(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = [json.loads(CliRunner().invoke(main, ["demo", "-o", "d", "--json"]).output)
            for _ in range(2)]
    # every count is the same; the virtual hours the run took may differ by a tick (which of the
    # concurrent sends sleeps first moves the virtual clock in a slightly different order)
    hours = re.compile(r"\((\d+(?:\.\d+)?) h of ")

    def story(run):
        out, spent = [], []
        for s in run["steps"]:
            if s["step"] == "reports":
                continue
            m = hours.search(s["result"])
            if m:
                spent.append(float(m.group(1)))
            out.append(hours.sub("(… h of ", s["result"]))
        return out, spent

    (a, ha), (b, hb) = story(runs[0]), story(runs[1])
    assert a == b
    assert len(ha) == len(hb) and all(abs(x - y) <= 0.5 for x, y in zip(ha, hb))

"""The contract suite: request -> response pairs transcribed from Meta's reference, run against
the in-process emulator (issue 16.10). The pairs are data in tests/contract/*.json, each with
a `source` naming the Meta page it comes from; a file may have `setup` requests whose answers
are captured (`{"cid": "id"}`) and substituted as `{cid}` in later paths and bodies.

Matching: the expected body is a subset of the answer (dicts by key, lists item by item and of
the same length), "<any>" matches any present value.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from migrator.emulator import EmulatorConfig, Subscriber, SyncEmulatorTransport, VirtualClock, create_app

CONTRACT = Path(__file__).parent / "contract"
NOW = 1_800_000_000.0

SUBSCRIBERS = [
    Subscriber(token="tok-us-1", page_id="111", region="US", psid="psid1", timezone="America/New_York",
               topic_title="Deals"),
    Subscriber(token="tok-us-2", page_id="111", region="BR", psid="psid2"),
    Subscriber(token="tok-us-3", page_id="111", region=None, psid="psid3"),
    Subscriber(token="tok-fr", page_id="111", region="FR", psid="psid4"),
    Subscriber(token="tok-dup", page_id="111", region="US", psid="psid1", topic_title="Other topic"),
    Subscriber(token="tok-chatty", page_id="111", region="US", psid="psid8", last_organic_at=NOW - 600),
    Subscriber(token="tok-stop", page_id="111", region="US", opted_out=True, psid="psid6"),
    Subscriber(token="tok-other", page_id="222", region="US", psid="psid7"),
]


def _files():
    return sorted(CONTRACT.glob("*.json"))


def _cases():
    for f in _files():
        doc = json.loads(f.read_text("utf-8"))
        for i, pair in enumerate(doc["pairs"]):
            yield pytest.param(f.name, i, id=f"{f.stem}:{pair['name'][:60]}")


def _subst(v, env):
    if isinstance(v, str):
        if v == "<640 emoji>":
            return "\U0001F600" * 640
        for k, x in env.items():
            v = v.replace("{" + k + "}", str(x))
        return v
    if isinstance(v, dict):
        return {k: _subst(x, env) for k, x in v.items()}
    if isinstance(v, list):
        return [_subst(x, env) for x in v]
    return v


def _match(want, got, where="body"):
    if want == "<any>":
        assert got is not None, f"{where}: missing"
        return
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {got!r}"
        for k, v in want.items():
            assert k in got, f"{where}.{k}: missing in {got!r}"
            _match(v, got[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: expected {len(want)} items, got {got!r}"
        for i, (w, g) in enumerate(zip(want, got)):
            _match(w, g, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: expected {want!r}, got {got!r}"


def _call(http, step, env):
    kw = {}
    if step.get("query"):
        kw["params"] = _subst(step["query"], env)
    if step.get("body") is not None:
        kw["json"] = _subst(step["body"], env)
    return http.request(step["method"], _subst(step["path"], env),
                        headers={"Authorization": "Bearer page-or-system-token"}, **kw)


def _run_file(name, upto):
    doc = json.loads((CONTRACT / name).read_text("utf-8"))
    clock = VirtualClock(NOW)
    app = create_app(EmulatorConfig(warmup_seconds=0, clock=clock),
                     subscribers=[Subscriber(**{f: getattr(s, f) for f in s.__slots__}) for s in SUBSCRIBERS])
    transport = SyncEmulatorTransport(app)
    env: dict = {}
    with httpx.Client(transport=transport, base_url="http://graph.test") as http:
        for step in doc.get("setup", []):
            r = _call(http, step, env)
            assert r.status_code == 200, r.text
            for k, path in step.get("capture", {}).items():
                env[k] = r.json()[path]
        for i, pair in enumerate(doc["pairs"][: upto + 1]):
            r = _call(http, pair["request"], env)
            if i == upto:
                return pair, r
            for k, path in pair.get("capture", {}).items():
                env[k] = r.json()[path]


@pytest.mark.parametrize("name,index", list(_cases()))
def test_contract_pair(name, index):
    pair, r = _run_file(name, index)
    assert pair["source"].startswith("http"), "every pair names the Meta page it comes from"
    want = pair["response"]
    assert r.status_code == want["status"], r.text
    env = {}
    if "cid" in json.dumps(want):
        env["cid"] = r.json().get("id")
    _match(_subst(want["body"], env), r.json())


def test_every_pair_documents_its_source():
    n = 0
    for f in _files():
        for pair in json.loads(f.read_text("utf-8"))["pairs"]:
            assert pair["source"].startswith("https://"), (f.name, pair["name"])
            assert "developers.facebook.com" in pair["source"] or "github.com/facebook" in pair["source"]
            n += 1
    assert n >= 20

"""The synthetic sample estate: deterministic, well-formed, and its ground truth holds.

The checks re-derive facts from the written files (and from tzdata directly), not from the
generator's internals: a hand-written replay of the webhook log must reach truth.jsonl.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrator.cli import main
from migrator.countries import normalize_country
from migrator.sample import generate_sample, write_tokens_csv, write_webhooks_jsonl
from migrator.sample import content as sample_content
from migrator.sample.geo import GEOS, MM_EXCLUDED, zone_class
from migrator.timeparse import to_epoch_seconds

FILES = ("pages.csv", "tokens.csv", "tokens_listing.jsonl", "webhooks.jsonl",
         "content_sends.jsonl", "content_library.json", "subscribers.jsonl", "truth.jsonl",
         "manifest.json")
CSV_HEADER = ("page_id,token,psid,topic_title,timezone,country,token_status,user_token_status,"
              "token_expiry,created_at,next_eligible_at,last_sent_at")
MM_BUSINESS = set("AU BR CL CO HK IN ID IL MY MX NZ PE PH SA SG TW TH AE US VN".split())


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    out = tmp_path_factory.mktemp("estate")
    manifest = generate_sample(out, tokens=600, pages=12, seed=3)
    return out, manifest


def _jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _truth(out: Path) -> list[dict]:
    return _jsonl(out / "truth.jsonl")


# --- determinism ---------------------------------------------------------------------------

def test_same_arguments_give_identical_bytes(tmp_path):
    a = generate_sample(tmp_path / "a", tokens=300, pages=8, seed=5)
    b = generate_sample(tmp_path / "b", tokens=300, pages=8, seed=5)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert [f.sha256 for f in a.files] == [f.sha256 for f in b.files]


def test_different_seed_gives_different_estate(tmp_path):
    a = generate_sample(tmp_path / "a", tokens=300, seed=1)
    b = generate_sample(tmp_path / "b", tokens=300, seed=2)
    for name in ("tokens.csv", "webhooks.jsonl", "truth.jsonl", "pages.csv"):
        assert a.file(name).sha256 != b.file(name).sha256, name
    tokens_a = {t["token"] for t in _truth(tmp_path / "a")}
    tokens_b = {t["token"] for t in _truth(tmp_path / "b")}
    assert not tokens_a & tokens_b


# --- manifest ------------------------------------------------------------------------------

def test_manifest_matches_the_files(estate):
    out, m = estate
    assert m.tokens == 600 and m.pages == 12
    for f in m.files:
        data = (out / f.name).read_bytes()
        assert f.bytes == len(data)
        assert f.sha256 == hashlib.sha256(data).hexdigest()
        assert f.lines == data.count(b"\n")
    truth = _truth(out)
    assert len(truth) == m.tokens == m.file("truth.jsonl").records == m.file("subscribers.jsonl").records
    assert dict(Counter(t["status"] for t in truth)) == m.counts["status"]
    assert dict(Counter(t["region_class"] for t in truth)) == m.counts["region_class"]
    assert m.persons == len({(t["page_id"], t["psid"]) for t in truth})
    on_disk = json.loads((out / "manifest.json").read_text())
    assert "out_dir" not in on_disk and on_disk["files"] == m.model_dump(mode="json")["files"]


def test_manifest_record_counts(estate):
    out, m = estate
    rows = list(csv.reader((out / "tokens.csv").open()))
    bad_lines = {x.line for x in m.file("tokens.csv").malformed}
    assert m.file("tokens.csv").records == len(rows) - 1 - len(bad_lines)
    assert m.file("pages.csv").records == len(rows_of(out / "pages.csv"))
    lib = json.loads((out / "content_library.json").read_text())
    assert m.file("content_library.json").records == len(lib)
    assert m.file("content_sends.jsonl").records == len(_jsonl(out / "content_sends.jsonl"))
    items = sum(len(o["data"]) if "data" in o else 1 for o in _listing_objects(out, m))
    assert m.file("tokens_listing.jsonl").records == items


def rows_of(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# --- formats -------------------------------------------------------------------------------

def test_pages_cover_every_case(estate):
    out, _ = estate
    pages = rows_of(out / "pages.csv")
    assert list(pages[0]) == ["page_id", "name", "business_country", "ad_account_id", "currency"]
    countries = [p["business_country"] for p in pages]
    assert any(c in MM_BUSINESS for c in countries)
    assert {"DE", "GB", "JP", "CA"} <= set(countries)
    assert countries.count("") == 1
    assert sum(1 for p in pages if not p["ad_account_id"]) == 1
    assert all(p["page_id"].isdigit() for p in pages)
    euro = {"DE": "EUR", "GB": "GBP", "JP": "JPY", "CA": "CAD", "US": "USD", "BR": "BRL", "IN": "INR"}
    for p in pages:
        if p["ad_account_id"] and p["business_country"] in euro:
            assert p["currency"] == euro[p["business_country"]]
        if p["ad_account_id"]:
            assert p["ad_account_id"].removeprefix("act_").isdigit()


def test_tokens_csv_rows_and_malformed_lines(estate):
    out, m = estate
    lines = (out / "tokens.csv").read_text().splitlines()
    assert lines[0] == CSV_HEADER
    malformed = {x.line: x.kind for x in m.file("tokens.csv").malformed}
    assert sorted(malformed.values()) == sorted(
        ["missing_token", "bad_page_id", "negative_page_id", "token_bidi", "wrong_column_count"])
    formats = Counter()
    truth = {t["token"]: t for t in _truth(out)}
    for n, row in enumerate(csv.reader(lines[1:]), start=2):
        kind = malformed.get(n)
        if kind == "wrong_column_count":
            assert len(row) != 12
            continue
        assert len(row) == 12, n
        rec = dict(zip(CSV_HEADER.split(","), row))
        if kind == "missing_token":
            assert rec["token"] == ""
            continue
        if kind in ("bad_page_id", "negative_page_id"):
            assert not (rec["page_id"].isascii() and rec["page_id"].isdecimal())
            continue
        if kind == "token_bidi":
            assert "\u202e" in rec["token"]
            continue
        t = truth[rec["token"]]
        assert rec["page_id"] == t["page_id"] and rec["psid"] == t["psid"]
        assert (rec["timezone"] or None) == t["timezone"]
        assert normalize_country(rec["country"]) == t["explicit_country"]
        assert rec["token_status"].lower() in ("", "active", "stopped")
        for col in ("token_expiry", "created_at", "next_eligible_at", "last_sent_at"):
            v = rec[col]
            to_epoch_seconds(v)
            if v:
                formats["iso" if "-" in v else "ms" if len(v) == 13 else "s"] += 1
    assert set(formats) == {"iso", "s", "ms"}


def _listing_objects(out, m) -> list:
    bad = {x.line for x in m.file("tokens_listing.jsonl").malformed}
    objs = []
    for n, line in enumerate((out / "tokens_listing.jsonl").read_text().splitlines(), start=1):
        if n in bad:
            with pytest.raises(ValueError):
                json.loads(line)
            continue
        objs.append(json.loads(line))
    return objs


def test_listing_pages_and_items(estate):
    out, m = estate
    assert len(m.file("tokens_listing.jsonl").malformed) == 1
    objs = _listing_objects(out, m)
    pages = [o for o in objs if "data" in o]
    items = [o for o in objs if "data" not in o]
    assert pages and items
    for p in pages:
        assert p["page_id"].isdigit() and set(p["paging"]["cursors"]) == {"before", "after"}
    assert any("next" in p["paging"] for p in pages) and any("next" not in p["paging"] for p in pages)
    fields = {"notification_messages_token", "recipient_id", "creation_timestamp",
              "user_token_status", "notification_messages_reoptin", "topic_title"}
    for item in items + [i for p in pages for i in p["data"]]:
        assert fields <= set(item)
    assert all("page_id" in i for i in items)


def _webhook_values(out, m):
    """(line, delivery) for every delivery; checks the malformed and array lines."""
    f = m.file("webhooks.jsonl")
    bad = {x.line for x in f.malformed}
    assert len(bad) == 1
    seen_array = False
    for n, line in enumerate((out / "webhooks.jsonl").read_text().splitlines(), start=1):
        if n in bad:
            with pytest.raises(ValueError):
                json.loads(line)
            continue
        obj = json.loads(line)
        if isinstance(obj, list):
            seen_array = True
            assert n == f.counts["array_line"] and len(obj) > 1
            for d in obj:
                yield n, d
        else:
            yield n, obj
    assert seen_array


def test_webhooks_replayed_by_hand_reach_the_truth(estate):
    """Replay RN events per token in timestamp order; snapshots (CSV status) override."""
    out, m = estate
    events = defaultdict(set)   # token -> {(ts, kind, tz)}
    order = defaultdict(list)   # token -> timestamps in file order
    counts = Counter()
    spellings, expiry_digits, per_delivery = set(), set(), Counter()
    for _, d in _webhook_values(out, m):
        assert d["object"] == "page"
        n_events = 0
        counts["multi_entry"] += len(d["entry"]) > 1
        for entry in d["entry"]:
            assert entry["id"].isdigit() and isinstance(entry["time"], int)
            counts["multi_event_entry"] += len(entry["messaging"]) > 1
            for ev in entry["messaging"]:
                n_events += 1
                assert ev["timestamp"] > 10 ** 12  # epoch ms
                o = ev.get("optin")
                if not o or o.get("type") != "notification_messages":
                    counts["ignored"] += 1
                    continue
                assert ev["recipient"]["id"] == entry["id"]
                tok = o["notification_messages_token"]
                status = o.get("notification_messages_status")
                kind = "optin" if status is None else status.replace(" ", "_")
                if status:
                    spellings.add(status)
                if "token_expiry_timestamp" in o:
                    expiry_digits.add(len(str(o["token_expiry_timestamp"])))
                key = (ev["timestamp"], kind, o.get("notification_messages_timezone"))
                counts["duplicate" if key in events[tok] else "rn"] += 1
                events[tok].add(key)
                order[tok].append(ev["timestamp"])
        per_delivery[min(n_events, 3)] += 1
    wc = m.file("webhooks.jsonl").counts
    assert counts["rn"] == wc["rn_events"]
    assert counts["duplicate"] == wc["duplicate_events"] > 0
    assert counts["ignored"] == wc["ignored_events"] > 0
    assert spellings == {"STOP_NOTIFICATIONS", "STOP NOTIFICATIONS", "RESUME_NOTIFICATIONS",
                         "RESUME NOTIFICATIONS"}
    assert expiry_digits == {10, 13}  # seconds and milliseconds
    assert per_delivery[1] and per_delivery[2] and per_delivery[3]
    assert counts["multi_entry"] and counts["multi_event_entry"]
    assert any(ts != sorted(ts) for ts in order.values())  # out-of-order deliveries

    csv_status = {r["token"]: r["token_status"].lower() for r in rows_of(out / "tokens.csv")}
    checked = 0
    for t in _truth(out):
        if "webhooks.jsonl" not in t["sources"]:
            assert t["token"] not in events
            continue
        evs = sorted(events[t["token"]])
        status = "stopped" if evs[-1][1] == "STOP_NOTIFICATIONS" else "active"
        assert not csv_status.get(t["token"])  # the webhook history decides
        assert status == t["status"], t
        assert [e for e in evs if e[1] == "optin"][-1][2] == t["timezone"]
        checked += 1
    assert checked > 100


def test_sources_are_exact_and_snapshots_never_contradict(estate):
    out, m = estate
    csv_tokens = {r["token"]: r for r in rows_of(out / "tokens.csv")}
    listing = {}
    for o in _listing_objects(out, m):
        for item in o.get("data", [o]):
            listing[item["notification_messages_token"]] = item
    combos = Counter()
    for t in _truth(out):
        srcs = set(t["sources"])
        assert srcs, t
        assert ("tokens.csv" in srcs) == (t["token"] in csv_tokens)
        assert ("tokens_listing.jsonl" in srcs) == (t["token"] in listing)
        combos[len(srcs)] += 1
        if t["token"] in listing:
            item = listing[t["token"]]
            assert item.get("notification_messages_timezone") == t["timezone"]
            assert item["topic_title"] == t["topic_title"] and item["recipient_id"] == t["psid"]
            if "tokens.csv" not in srcs and "webhooks.jsonl" not in srcs:
                assert t["status"] == "active"  # a listing carries no status
        if t["token"] in csv_tokens and "webhooks.jsonl" not in srcs:
            st = csv_tokens[t["token"]]["token_status"].lower() or "active"
            assert st == t["status"]
    assert combos[1] and combos[2] and combos[3]


def test_subscribers_for_the_emulator(estate):
    out, _ = estate
    truth = {t["token"]: t for t in _truth(out)}
    subs = _jsonl(out / "subscribers.jsonl")
    assert len(subs) == len(truth)
    for s in subs:
        assert set(s) == {"token", "page_id", "region", "opted_out", "psid", "timezone", "topic_title",
                          "created_at"}  # created_at (epoch s): the emulator's listing shows it
        t = truth[s["token"]]
        assert s["region"] == t["true_country"] and len(s["region"]) == 2
        assert s["opted_out"] == (t["status"] == "stopped")
        assert (s["page_id"], s["psid"], s["timezone"]) == (t["page_id"], t["psid"], t["timezone"])


# --- realism -------------------------------------------------------------------------------

def test_realistic_mix(estate):
    out, m = estate
    truth = _truth(out)
    by_person = defaultdict(list)
    for t in truth:
        by_person[(t["page_id"], t["psid"])].append(t)
    multi = [ts for ts in by_person.values() if len(ts) > 1]
    assert len(multi) > 20
    assert all(len({t["topic_title"] for t in ts}) == len(ts) for ts in multi)
    rc = Counter(t["region_class"] for t in truth)
    for cls in ("mm_allowed", "mm_excluded", "unknown"):
        assert rc[cls] >= len(truth) * 0.03, rc
    assert rc["mm_allowed"] > len(truth) / 2
    zones = {t["timezone"] for t in truth}
    assert {"Asia/Calcutta", "UTC", None} <= zones
    assert zones & {"Europe/Berlin", "Europe/Paris", "Europe/London"}
    true = {t["true_country"] for t in truth}
    assert {"US", "BR", "IN", "JP", "KR", "AU", "GB"} <= true and true & {"ES", "NL", "PL"}
    stopped = sum(t["status"] == "stopped" for t in truth)
    assert 0.05 * len(truth) < stopped < 0.3 * len(truth)
    # the partner's country is the true one; for travellers it contradicts the time zone
    assert all(t["explicit_country"] in (None, t["true_country"]) for t in truth)
    assert any(t["explicit_country"] and zone_class(t["timezone"]) not in (t["region_class"], "unknown")
               for t in truth)
    assert m.counts["kind"]["legacy"] > 0 and m.counts["history"]["stop_resume"] > 0
    assert m.file("webhooks.jsonl").counts["out_of_order_tokens"] > 0


def test_legacy_tokens_carry_frequency_and_expiry(estate):
    out, m = estate
    freqs = Counter()
    for _, d in _webhook_values(out, m):
        for e in d["entry"]:
            for ev in e["messaging"]:
                o = ev.get("optin") or {}
                if "notification_messages_frequency" in o:
                    freqs[o["notification_messages_frequency"]] += 1
                    assert "token_expiry_timestamp" in o
                if o.get("user_token_status") == "REFRESHED":
                    freqs["refreshed"] += 1
    assert {"DAILY", "WEEKLY"} <= set(freqs) and freqs["refreshed"] > 0


# --- region classes agree with tzdata ------------------------------------------------------

def _tzdata_candidates():
    """An independent reading of tzdata: the zone.tab country of the name, else along its links."""
    def read(name):
        return resources.files("tzdata").joinpath("zoneinfo", name).read_text("utf-8")
    ztab, links = {}, {}
    for line in read("zone.tab").splitlines():
        if line and line[0] != "#":
            cc, _, zone = line.split("\t")[:3]
            ztab[zone] = cc
    for line in read("tzdata.zi").splitlines():
        if line.startswith("L "):
            _, target, link = line.split()
            links[link] = target

    def cands(zone):
        if not zone or zone in ("UTC", "GMT") or zone.startswith("Etc/"):
            return set()
        while zone not in ztab and zone in links:
            zone = links[zone]
        return {ztab[zone]} if zone in ztab else set()
    return cands


def test_region_class_agrees_with_tzdata(estate):
    out, _ = estate
    cands = _tzdata_candidates()

    def cls(zone):
        c = cands(zone)
        if not c:
            return "unknown"
        v = {x in MM_EXCLUDED for x in c}
        return "ambiguous" if len(v) == 2 else ("mm_excluded" if v.pop() else "mm_allowed")

    for _, zone, _, intended in GEOS:
        assert cls(zone) == intended, zone
    assert cls("Europe/Berlin") == "mm_excluded" and cls("Europe/Oslo") == "mm_allowed"
    assert cls("Asia/Calcutta") == "mm_allowed"
    for t in _truth(out):
        if t["explicit_country"]:
            want = "mm_excluded" if t["explicit_country"] in MM_EXCLUDED else "mm_allowed"
        else:
            want = cls(t["timezone"])
        assert t["region_class"] == want, t


def test_region_class_agrees_with_the_audit_inference():
    regions = pytest.importorskip("migrator.regions")
    from migrator.sample.geo import candidate_countries
    for _, zone, _, _ in GEOS:
        assert candidate_countries(zone) == regions.timezone_candidates(zone), zone


# --- content -------------------------------------------------------------------------------

def test_content_covers_every_shape(estate):
    out, m = estate
    sends = _jsonl(out / "content_sends.jsonl")
    tokens = {t["token"] for t in _truth(out)}
    msgs = [s["message"] for s in sends]
    assert all(s["recipient"]["notification_messages_token"] in tokens for s in sends)
    lines = (out / "content_sends.jsonl").read_text().splitlines()
    assert len(lines) - len(set(lines)) == m.file("content_sends.jsonl").counts["repeated_lines"] > 0
    texts = [x["text"] for x in msgs if "text" in x]
    assert any(len(t) > 640 for t in texts) and max(len(t) for t in texts) == 2000
    assert any("{{first_name}}" in t for t in texts)
    payloads = [x["attachment"]["payload"] for x in msgs if x.get("attachment", {}).get("type") == "template"]
    generic = [p for p in payloads if p["template_type"] == "generic"]
    assert {len(p["elements"]) for p in generic} >= {1, 3, 11}
    assert any("{{first_name}}" in e["title"] for p in generic for e in p["elements"])
    buttons = {b["type"] for p in payloads if p["template_type"] == "button" for b in p["buttons"]}
    assert buttons == {"web_url", "postback", "phone_number"}
    media = [p["elements"][0] for p in payloads if p["template_type"] == "media"]
    assert any("attachment_id" in e for e in media)
    assert any("facebook.com" in e.get("url", "") for e in media)
    assert any(e.get("url") and "facebook.com" not in e["url"] for e in media)
    kinds = {x["attachment"]["type"] for x in msgs if "attachment" in x}
    assert kinds == {"template", "image", "video", "audio", "file"}
    assert any("quick_replies" in x for x in msgs) and any("metadata" in x for x in msgs)
    distinct = {sample_content.canonical(x) for x in msgs}
    assert len(distinct) == m.file("content_sends.jsonl").counts["distinct_messages"] < len(msgs)
    lib = json.loads((out / "content_library.json").read_text())
    pages = {p["page_id"] for p in rows_of(out / "pages.csv")}
    for e in lib:
        assert set(e) == {"page_id", "key", "topic_title", "message"} and e["page_id"] in pages
    assert len(sample_content.SEND_WEIGHTS) == len(sample_content.SHAPES)


# --- CLI -------------------------------------------------------------------------------------

def test_cli_writes_the_sample_without_a_workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("MIGRATOR_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["sample", "-o", "est", "--tokens", "200", "--pages", "6",
                                  "--seed", "9", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["tokens"] == 200 and data["pages"] == 6 and data["seed"] == 9
    assert {f["name"] for f in data["files"]} == set(FILES) - {"manifest.json"}
    assert not (tmp_path / "migration.db").exists()
    assert len((tmp_path / "est" / "truth.jsonl").read_text().splitlines()) == 200
    r2 = CliRunner().invoke(main, ["sample", "-o", "est2", "--tokens", "200", "--pages", "6",
                                   "--seed", "9"])
    assert r2.exit_code == 0 and "tokens.csv" in r2.output and "malformed" in r2.output
    assert (tmp_path / "est" / "webhooks.jsonl").read_bytes() == (tmp_path / "est2" / "webhooks.jsonl").read_bytes()


def test_cli_refuses_bad_arguments(tmp_path):
    (tmp_path / "file").write_text("x")
    runner = CliRunner()
    r = runner.invoke(main, ["sample", "-o", str(tmp_path / "file")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = runner.invoke(main, ["sample", "-o", str(tmp_path / "d"), "--tokens", "5"])
    assert r.exit_code == 2
    r = runner.invoke(main, ["sample", "--help"])
    assert r.exit_code == 0 and "Example" in r.output


def test_library_refuses_bad_arguments(tmp_path):
    from migrator.errors import InputError
    with pytest.raises(InputError):
        generate_sample(tmp_path, tokens=10)
    with pytest.raises(InputError):
        generate_sample(tmp_path, pages=0)
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError):
        generate_sample(tmp_path / "f")


# --- benchmark writers -----------------------------------------------------------------------

def test_bench_writers_are_fast_shaped_and_deterministic(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    ra = write_tokens_csv(a, 3000, seed=4)
    write_tokens_csv(b, 3000, seed=4)
    assert a.read_bytes() == b.read_bytes() and ra["rows"] == 3000
    rows = rows_of(a)
    assert len(rows) == 3000 and ",".join(rows[0]) == CSV_HEADER
    assert len({r["token"] for r in rows}) == 3000
    for r in rows[:500]:
        to_epoch_seconds(r["created_at"])
        normalize_country(r["country"])
        assert r["token_status"] in ("active", "stopped", "")
    w = tmp_path / "w.jsonl"
    rw = write_webhooks_jsonl(w, 5000, seed=4)
    lines = w.read_text().splitlines()
    assert len(lines) == rw["events"] == 5000
    kinds = Counter()
    for line in lines:
        o = json.loads(line)["entry"][0]["messaging"][0]["optin"]
        kinds[o.get("notification_messages_status", "optin")] += 1
    assert kinds["optin"] > 3000 and len(kinds) == 5
    assert len(lines) - len(set(lines)) == rw["duplicates"] > 0


def test_emulator_loads_the_subscribers(estate):
    emulator = pytest.importorskip("migrator.emulator")
    out, m = estate
    loaded = emulator.load_subscribers_jsonl(out / "subscribers.jsonl")
    assert loaded.rejected == [] and len(loaded.subscribers) == m.tokens
    truth = {t["token"]: t for t in _truth(out)}
    for s in loaded.subscribers:
        assert s.region == truth[s.token]["true_country"]
        assert s.opted_out == (truth[s.token]["status"] == "stopped")

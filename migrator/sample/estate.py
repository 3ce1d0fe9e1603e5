"""`generate_sample`: a deterministic, realistic RN estate in every input format.

One seeded `random.Random` drives everything, no wall clock is read, and every file is
written in a fixed order, so the same arguments give byte-identical files. Subscribers are
generated person by person (each with one to three topic tokens), their whole history is
decided up front, and each record is written as soon as it is known: memory holds the
pages, a small content catalog and the webhook events not yet due, never the estate.

The final state in `truth.jsonl` follows the ingest rule: per token, the profile comes from
the newest opt-in or snapshot, the status from the newest stop/resume/opt-in; snapshots
(tokens.csv, listing) are newer than every webhook event. So a token whose status the
webhook history decides never carries a token_status in tokens.csv, and tokens that are
only in the listing (which has no status) are never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from migrator.errors import InputError
from migrator.outputs import OutputError, check_output, safe_output, write_text_safely
from migrator.sample import content as C
from migrator.sample import geo
from migrator.sample.listing import ListingWriter
from migrator.sample.model import (
    CONTENT_LIBRARY, CONTENT_SENDS, LISTING_JSONL, MANIFEST, PAGES_CSV, SUBSCRIBERS, TOKENS_CSV,
    TRUTH, WEBHOOKS_JSONL, MalformedLine, SampleFile, SampleManifest,
)
from migrator.sample.pages import MM_BUSINESS, Page, make_pages, write_pages
from migrator.sample.rand import _pick, _ri, cum, numeric_id
from migrator.sample.tokens_csv import CSV_MALFORMED, TokensCsvWriter
from migrator.sample.webhooks import DeliveryWriter, dumpl, optin_event
from migrator.timeparse import DAY

START = 1_654_041_600          # 2022-06-01: first opt-ins in the estate
# 2023-02-02: frequency deprecated (Messenger changelog:
# https://developers.facebook.com/documentation/business-messaging/messenger-platform/changelog)
LEGACY_END = 1_675_296_000
LAST_OPTIN = 1_756_684_800     # 2025-09-01: no new RN integrations after this
HISTORY_END = 1_767_139_200    # 2025-12-31: last webhook event in the logs
FAR_EXPIRY = 2_145_916_800     # 2038-01-01, the value Meta's samples carry for new tokens
LEGACY_DAYS = {"DAILY": 182, "WEEKLY": 274, "MONTHLY": 365}

MIN_TOKENS = 100
MAX_TOKENS = 5_000_000
MAX_PAGES = 1000

# share of tokens per combination of sources (C = tokens.csv, L = listing, W = webhooks)
SOURCE_MIX = (("W", 30), ("C", 22), ("L", 13), ("CW", 12), ("LW", 10), ("CL", 7), ("CLW", 6))
# webhook histories: opt-in only, stopped, stopped then resumed, ...
HISTORY_MIX = (("optin", 66), ("stop", 12), ("stop_resume", 7), ("stop_resume_stop", 2),
               ("reoptin_after_stop", 3), ("refresh", 10))
OUT_OF_ORDER_RATE = 0.2        # multi-event histories whose second-last event arrives last
TRAVELLER_RATE = 0.03          # time zone of another region than where the person lives
KNOWN_COUNTRY_RATE = 0.3       # partner's CSV knows the subscriber's country


@dataclass(slots=True)
class Profile:
    topic_title: str
    payload: str
    timezone: str | None
    frequency: str | None
    token_expiry: int | None        # epoch seconds
    user_token_status: str
    reoptin: str
    created_at: int
    next_eligible_at: int | None = None
    last_sent_at: int | None = None


def _check(tokens: int, pages: int) -> None:
    if not isinstance(tokens, int) or not MIN_TOKENS <= tokens <= MAX_TOKENS:
        raise InputError(f"--tokens must be between {MIN_TOKENS} and {MAX_TOKENS:,}, got {tokens}",
                         hint="the sample needs at least 100 tokens to contain every case")
    if not isinstance(pages, int) or not 1 <= pages <= MAX_PAGES:
        raise InputError(f"--pages must be between 1 and {MAX_PAGES}, got {pages}",
                         hint="12 pages (the default) cover every page case")


class _Estate:
    """Generates the estate and writes all files; one instance per `generate_sample` call."""

    def __init__(self, out: Path, tokens: int, n_pages: int, seed: int):
        self.out = out
        self.n = tokens
        self.seed = seed
        self.rng = random.Random(f"migrator-sample/{seed}")
        self.pages = make_pages(self.rng, n_pages)
        self.page_cum = cum(1.0 / (k + 1) ** 0.7 for k in range(len(self.pages)))
        self.geo_all = [(c, z) for c, z, _, _ in geo.GEOS]
        self.geo_cum = cum(w for _, _, w, _ in geo.GEOS)
        self.geo_by_country: dict[str, tuple[list, list]] = {}
        for c in {c for c, _, _, _ in geo.GEOS if c != "*"}:
            rows = [(cc, z, w) for cc, z, w, _ in geo.GEOS if cc == c]
            self.geo_by_country[c] = ([(cc, z) for cc, z, _ in rows], cum(w for _, _, w in rows))
        self.unknown_countries = [c for c, _ in geo.UNKNOWN_ZONE_COUNTRIES]
        self.unknown_cum = cum(w for _, w in geo.UNKNOWN_ZONE_COUNTRIES)
        self.zone_class = {z: geo.zone_class(z) for _, z in self.geo_all}
        self.catalogs = {p.page_id: C.catalog(p.shop) for p in self.pages}
        self.send_cum = cum(C.SEND_WEIGHTS[:len(C.SHAPES)])
        self.send_rate = min(1.0, max(60, tokens // 8) / tokens)
        self.counts: dict[str, Counter] = {k: Counter() for k in (
            "status", "region_class", "sources", "history", "geo", "tokens_per_person", "kind")}
        self.sends = 0          # lines written
        self.send_events = 0    # distinct sends (lines minus logged repeats)
        self.send_dupes = 0
        self.send_messages: set[str] = set()
        self.send_shapes: Counter = Counter()
        self.ooo_tokens = 0
        self.malformed_at = {tokens * (k + 1) // (len(CSV_MALFORMED) + 1): kind
                             for k, kind in enumerate(CSV_MALFORMED)}
        self.persons = 0

    # --- people ---------------------------------------------------------------------------
    def _pick_geo(self, page: Page) -> tuple[str, str | None]:
        rng = self.rng
        if page.country in self.geo_by_country and rng.random() < 0.5:
            rows, cum = self.geo_by_country[page.country]
            country, zone = _pick(rng, rows, cum)
        else:
            country, zone = _pick(rng, self.geo_all, self.geo_cum)
        if country == "*":
            country = _pick(rng, self.unknown_countries, self.unknown_cum)
        return country, zone

    def _traveller_zone(self, zone: str | None) -> str | None:
        """A zone of another class than the person's own (someone abroad or a wrong setting)."""
        own = self.zone_class[zone]
        while True:
            _, other = _pick(self.rng, self.geo_all, self.geo_cum)
            if self.zone_class[other] not in (own, "unknown"):
                return other

    def run(self, f_csv, f_sub, f_truth, f_sends, writer: DeliveryWriter, listing: ListingWriter) -> None:
        rng = self.rng
        self.csv = TokensCsvWriter(f_csv, rng)
        self.f_sub, self.f_truth, self.f_sends = f_sub, f_truth, f_sends
        self.webhooks, self.listing = writer, listing
        src_names, src_cum = [s for s, _ in SOURCE_MIX], cum(w for _, w in SOURCE_MIX)
        hist_names, hist_cum = [h for h, _ in HISTORY_MIX], cum(w for _, w in HISTORY_MIX)
        span = LAST_OPTIN - START - 30 * DAY
        i = 0
        while i < self.n:
            page = _pick(rng, self.pages, self.page_cum)
            true_country, zone = self._pick_geo(page)
            traveller = rng.random() < TRAVELLER_RATE
            if traveller:
                zone = self._traveller_zone(zone)
            knows_country = rng.random() < (0.8 if traveller else KNOWN_COUNTRY_RATE)
            k = min(_pick(rng, (1, 2, 3), (65, 90, 100)), len(page.topics), self.n - i)
            topics = rng.sample(page.topics, k)
            psid = numeric_id(self.persons, 16, rng, 2_222_222)
            base = START + span * i // self.n + _ri(rng, 3 * DAY)
            self.counts["tokens_per_person"][str(k)] += 1
            self.counts["geo"]["traveller" if traveller else self.zone_class[zone]] += 1
            for j, (key, title) in enumerate(topics):
                t0 = base if j == 0 else min(base + _ri(rng, 3600, 120 * DAY), LAST_OPTIN)
                sources = _pick(rng, src_names, src_cum)
                history = _pick(rng, hist_names, hist_cum) if "W" in sources else None
                self._token(i, page, psid, key, title, zone, true_country, knows_country, t0,
                            sources, history, single=(k == 1))
                i += 1
                if i in self.malformed_at:
                    self.csv.malformed_row(page, self.malformed_at[i])
            self._other_events(page, psid, base)
            self.persons += 1
            writer.drain(base * 1000)
        writer.drain(None)
        listing.finish()

    # --- one token ------------------------------------------------------------------------
    def _token(self, i: int, page: Page, psid: str, key: str, title: str, zone: str | None,
               true_country: str, knows_country: bool, t0: int, sources: str,
               history: str | None, *, single: bool) -> None:
        rng = self.rng
        token = numeric_id(i, 20, rng, 3_333_333)
        legacy = t0 < LEGACY_END
        if legacy:
            freq = _pick(rng, ("DAILY", "WEEKLY", "MONTHLY"), (6, 9, 10))
            expiry = t0 + LEGACY_DAYS[freq] * DAY
            reoptin = "ENABLED" if rng.random() < 0.7 else "DISABLED"
        else:
            freq, reoptin = None, "DISABLED"
            expiry = FAR_EXPIRY if rng.random() < 0.6 else None
        prof = Profile(topic_title=title, payload=key, timezone=zone, frequency=freq,
                       token_expiry=expiry, user_token_status="NOT_REFRESHED", reoptin=reoptin,
                       created_at=t0)
        if history == "refresh" and not legacy:
            history = "optin"  # only pre-Aug-2023 tokens expired and were refreshed
        status = "active"
        if history is not None:
            status, prof, true_country = self._webhook_history(
                page, psid, token, prof, history, single, true_country)
            self.counts["history"][history] += 1
        elif "C" in sources and rng.random() < 0.1:
            status = "stopped"  # decided by the partner's export, no webhook says otherwise
        if rng.random() < 0.4:
            last = _ri(rng, max(t0, HISTORY_END - 200 * DAY), HISTORY_END)
            prof.last_sent_at = last
            prof.next_eligible_at = last + 2 * DAY
        explicit = true_country if knows_country and "C" in sources else None
        zone = prof.timezone
        rclass = geo.region_class(explicit, zone)
        if "C" in sources:
            self.csv.row(page, token, psid, prof, explicit, status, webhook="W" in sources)
        if "L" in sources:
            self.listing.add(page.page_id, self._listing_item(token, psid, prof))
        if self.send_events < len(C.SHAPES) or rng.random() < self.send_rate:
            self._send(page, token)
        src = [n for c, n in (("C", TOKENS_CSV), ("L", LISTING_JSONL), ("W", WEBHOOKS_JSONL))
               if c in sources]
        self.f_truth.write(dumpl({
            "token": token, "page_id": page.page_id, "psid": psid, "topic_title": title,
            "timezone": zone, "explicit_country": explicit, "true_country": true_country,
            "status": status, "region_class": rclass, "sources": src}))
        self.f_sub.write(dumpl({
            "token": token, "page_id": page.page_id, "region": true_country,
            "opted_out": status == "stopped", "psid": psid, "timezone": zone,
            "topic_title": title, "created_at": prof.created_at}))
        self.counts["status"][status] += 1
        self.counts["region_class"][rclass] += 1
        self.counts["sources"][sources] += 1
        self.counts["kind"]["legacy" if legacy else "current"] += 1

    def _webhook_history(self, page: Page, psid: str, token: str, prof: Profile, history: str,
                         single: bool, true_country: str) -> tuple[str, Profile, str]:
        """Queue the token's webhook events; return its final status, profile and country."""
        rng = self.rng
        unit_ms = rng.random() < 0.7
        spell = rng.random() < 0.5  # STOP_NOTIFICATIONS vs "STOP NOTIFICATIONS"
        t = prof.created_at * 1000 + _ri(rng, 1000)
        events: list[tuple[int, str, Profile]] = [(t, "optin", prof)]

        def later(lo_days: float, hi_days: float) -> int:
            nonlocal t
            t = min(t + _ri(rng, int(lo_days * DAY * 1000), int(hi_days * DAY * 1000)),
                    HISTORY_END * 1000 - 1000 * (5 - len(events)))
            t = max(t, events[-1][0] + 1000)
            return t

        if history == "refresh":
            renewed = dataclasses.replace(
                prof, user_token_status="REFRESHED",
                token_expiry=prof.token_expiry + LEGACY_DAYS[prof.frequency] * DAY)
            ts = min(max(prof.token_expiry - _ri(rng, DAY, 20 * DAY), t // 1000 + DAY),
                     HISTORY_END - DAY) * 1000 + _ri(rng, 1000)
            t = max(ts, t + 1000)
            if single and rng.random() < 0.25:  # moved abroad before re-opting in
                country, zone = _pick(rng, self.geo_all, self.geo_cum)
                if country != "*":
                    renewed.timezone, true_country = zone, country
            events.append((t, "optin", renewed))
            prof = renewed
        elif history != "optin":
            steps = {"stop": ("stop",), "stop_resume": ("stop", "resume"),
                     "stop_resume_stop": ("stop", "resume", "stop"),
                     "reoptin_after_stop": ("stop", "optin")}[history]
            for step in steps:
                if step == "stop":
                    events.append((later(1, 300), "stop", prof))
                elif step == "resume":
                    events.append((later(0.01, 60), "resume", prof))
                else:
                    events.append((later(1, 90), "optin", prof))
        status = "stopped" if events[-1][1] == "stop" else "active"
        ooo = len(events) >= 2 and rng.random() < OUT_OF_ORDER_RATE
        if ooo:
            self.ooo_tokens += 1
        last_ts = events[-1][0]
        for n, (ts, kind, p) in enumerate(events):
            if ooo and n == len(events) - 2:
                due = last_ts + _ri(rng, 1000, 600_000)
            elif ooo and n == len(events) - 1:
                due = ts + _ri(rng, 100, 900)
            elif rng.random() < 0.04:
                due = ts + _ri(rng, 60_000, 6 * 3_600_000)
            else:
                due = ts + _ri(rng, 200, 3000)
            self.webhooks.push(due, page.page_id, optin_event(
                page.page_id, psid, ts, self._optin(token, kind, p, unit_ms, spell)), rn=True)
        return status, prof, true_country

    @staticmethod
    def _optin(token: str, kind: str, p: Profile, unit_ms: bool, spell: bool) -> dict:
        o: dict = {"type": "notification_messages", "payload": p.payload, "title": p.topic_title,
                   "notification_messages_token": token}
        if kind == "optin":
            if p.frequency:
                o["notification_messages_frequency"] = p.frequency
            if p.timezone:
                o["notification_messages_timezone"] = p.timezone
            if p.token_expiry is not None:
                o["token_expiry_timestamp"] = p.token_expiry * 1000 if unit_ms else p.token_expiry
            o["user_token_status"] = p.user_token_status
        else:
            word = "STOP" if kind == "stop" else "RESUME"
            o["notification_messages_status"] = f"{word}_NOTIFICATIONS" if spell else f"{word} NOTIFICATIONS"
        return o

    @staticmethod
    def _listing_item(token: str, psid: str, p: Profile) -> dict:
        item: dict = {"notification_messages_token": token, "recipient_id": psid,
                      "creation_timestamp": p.created_at * 1000}
        if p.token_expiry is not None:
            item["token_expiry_timestamp"] = p.token_expiry * 1000
        item["user_token_status"] = p.user_token_status
        item["notification_messages_reoptin"] = p.reoptin
        if p.timezone:
            item["notification_messages_timezone"] = p.timezone
        if p.frequency:
            item["notification_messages_frequency"] = p.frequency
        item["topic_title"] = p.topic_title
        if p.next_eligible_at is not None:
            item["next_eligible_time"] = p.next_eligible_at
        return item

    # --- other webhook events (counted as ignored by ingest) --------------------------------
    def _other_events(self, page: Page, psid: str, base: int) -> None:
        rng = self.rng
        pid = page.page_id
        for kind, rate in (("echo", 0.25), ("delivery", 0.15), ("read", 0.06), ("postback", 0.1),
                           ("plugin_optin", 0.08)):
            if rng.random() >= rate:
                continue
            ts = (base + _ri(rng, 60, 30 * DAY)) * 1000 + _ri(rng, 1000)
            mid = f"m_{rng.getrandbits(96):024x}"
            if kind == "echo":
                ev = {"sender": {"id": pid}, "recipient": {"id": psid}, "timestamp": ts,
                      "message": {"is_echo": True, "app_id": 1_517_005_491_212_345, "mid": mid,
                                  "text": "Thanks for your order!"}}
            elif kind == "delivery":
                ev = {"sender": {"id": psid}, "recipient": {"id": pid}, "timestamp": ts,
                      "delivery": {"mids": [mid], "watermark": ts - 500}}
            elif kind == "read":
                ev = {"sender": {"id": psid}, "recipient": {"id": pid}, "timestamp": ts,
                      "read": {"watermark": ts - 2000}}
            elif kind == "postback":
                ev = {"sender": {"id": psid}, "recipient": {"id": pid}, "timestamp": ts,
                      "postback": {"title": "Remind me later", "payload": "REMIND_1", "mid": mid}}
            else:
                ev = {"recipient": {"id": pid}, "timestamp": ts,
                      "optin": {"ref": f"checkout-{_ri(rng, 10 ** 6)}",
                                "user_ref": f"ur-{rng.getrandbits(48):012x}"}}
            self.webhooks.push(ts + _ri(rng, 200, 3000), pid, ev, rn=False)

    # --- content --------------------------------------------------------------------------
    def _send(self, page: Page, token: str) -> None:
        rng = self.rng
        cat = self.catalogs[page.page_id]
        if self.send_events < len(cat):
            idx = self.send_events  # the first sends cover every shape once
        else:
            idx = _pick(rng, range(len(cat)), self.send_cum)
        shape, message = cat[idx]
        body: dict = {"recipient": {"notification_messages_token": token}}
        if rng.random() < 0.5:
            body["messaging_type"] = "UPDATE"
        body["message"] = message
        line = dumpl(body)
        self.f_sends.write(line)
        self.send_events += 1
        self.sends += 1
        self.send_shapes[shape] += 1
        self.send_messages.add(C.canonical(message))
        if rng.random() < 0.04:  # the partner logged a retried send twice
            self.f_sends.write(line)
            self.sends += 1
            self.send_dupes += 1
            self.send_shapes[shape] += 1

    def write_library(self, path: Path) -> tuple[int, set[str]]:
        rng = self.rng
        entries = 0
        messages: set[str] = set()
        with safe_output(path, force=True, binary=True) as f:  # generate_sample checked the folder
            f.write(b"[")
            for p in self.pages:
                cat = self.catalogs[p.page_id]
                for j, (key, title) in enumerate(p.topics):
                    shape, message = cat[_ri(rng, len(cat))]
                    f.write((b"\n" if entries == 0 else b",\n") + orjson.dumps({
                        "page_id": p.page_id, "key": f"{(key or 'default').lower()}-{j + 1}",
                        "topic_title": title, "message": message}))
                    entries += 1
                    messages.add(C.canonical(message))
            f.write(b"\n]\n")
        return entries, messages


def _file_info(path: Path, records: int, malformed=(), counts=None) -> SampleFile:
    h = hashlib.sha256()
    lines = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            lines += chunk.count(b"\n")
    return SampleFile(name=path.name, bytes=path.stat().st_size, sha256=h.hexdigest(), lines=lines,
                      records=records, malformed=list(malformed), counts=dict(counts or {}))


SAMPLE_FILES = (PAGES_CSV, TOKENS_CSV, SUBSCRIBERS, TRUTH, CONTENT_SENDS, WEBHOOKS_JSONL,
                LISTING_JSONL, CONTENT_LIBRARY)


def _check_targets(out: Path, force: bool) -> None:
    """Refuse to replace a file in `out` that an earlier sample did not write:
    a file counts as ours when our manifest.json beside it lists it with its sha256."""
    known: dict[str, str] = {}
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            known = {f["name"]: f["sha256"] for f in data.get("files", [])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            if not force:
                raise OutputError(f"refusing to write over {manifest}: migrator did not write it",
                                  hint="choose another -o directory, or pass --force") from None
    for name in SAMPLE_FILES:
        p = out / name
        check_output(p, force=True)  # a directory or a device there is refused even with --force
        if p.exists() and not force and known.get(name) != _sha256(p):
            raise OutputError(f"refusing to write over {p}: migrator did not write it (or it was "
                              "changed since)", hint="choose another -o directory, or pass --force")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def generate_sample(out_dir: str | Path, *, tokens: int = 2000, pages: int = 12,
                    seed: int = 7, force: bool = False) -> SampleManifest:
    """Write a synthetic RN estate (every input format plus its ground truth) into `out_dir`.

    Deterministic: the same arguments give byte-identical files. Returns the manifest
    (also written as manifest.json, without the directory, so it is deterministic too).
    Files an earlier sample wrote are replaced; any other file is refused unless `force`.
    Each file is written atomically (migrator.outputs).
    """
    _check(tokens, pages)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", path=str(out),
                         hint="pass -o with a directory (it is created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the directory: {exc.strerror}", path=str(out)) from None
    _check_targets(out, force)
    est = _Estate(out, tokens, pages, seed)
    write_pages(out / PAGES_CSV, est.pages)
    # response pages of 100 or 25 items for half the pages, bare items for the others
    page_limits = {p.page_id: ((100, None, 25, None)[k % 4]) for k, p in enumerate(est.pages)}
    with contextlib.ExitStack() as stack:
        f_csv = stack.enter_context(safe_output(out / TOKENS_CSV, force=True, newline=""))
        f_sub, f_truth, f_sends, f_wh, f_list = (
            stack.enter_context(safe_output(out / name, force=True, binary=True))
            for name in (SUBSCRIBERS, TRUTH, CONTENT_SENDS, WEBHOOKS_JSONL, LISTING_JSONL))
        writer = DeliveryWriter(f_wh, est.rng)
        listing = ListingWriter(f_list, page_limits)
        est.run(f_csv, f_sub, f_truth, f_sends, writer, listing)
    lib_entries, lib_messages = est.write_library(out / CONTENT_LIBRARY)

    counts = {k: dict(sorted(v.items())) for k, v in est.counts.items()}
    files = [
        _file_info(out / PAGES_CSV, len(est.pages), counts={
            "without_ad_account": sum(1 for p in est.pages if not p.ad_account_id),
            "unknown_country": sum(1 for p in est.pages if not p.country),
            "mm_business_country": sum(1 for p in est.pages if p.country in MM_BUSINESS)}),
        _file_info(out / TOKENS_CSV, est.csv.rows, est.csv.malformed),
        _file_info(out / LISTING_JSONL, listing.items,
                   [MalformedLine(line=listing.malformed_line, kind="truncated_json")]
                   if listing.malformed_line else [],
                   {"items": listing.items, "page_lines": listing.page_lines,
                    "item_lines": listing.item_lines}),
        _file_info(out / WEBHOOKS_JSONL, writer.rn_events + writer.duplicate_events + writer.ignored_events,
                   [MalformedLine(line=writer.malformed_line, kind="truncated_json")]
                   if writer.malformed_line else [],
                   {"deliveries": writer.deliveries, "rn_events": writer.rn_events,
                    "duplicate_events": writer.duplicate_events,
                    "ignored_events": writer.ignored_events, "redeliveries": writer.redeliveries,
                    "out_of_order_tokens": est.ooo_tokens, "array_line": writer.array_line or 0}),
        _file_info(out / CONTENT_SENDS, est.sends, counts={
            "distinct_messages": len(est.send_messages), "repeated_lines": est.send_dupes,
            **{f"shape_{k}": v for k, v in sorted(est.send_shapes.items())}}),
        _file_info(out / CONTENT_LIBRARY, lib_entries, counts={
            "distinct_messages": len(lib_messages),
            "distinct_messages_with_sends": len(lib_messages | est.send_messages)}),
        _file_info(out / SUBSCRIBERS, tokens),
        _file_info(out / TRUTH, tokens),
    ]
    manifest = SampleManifest(out_dir=str(out), seed=seed, tokens=tokens, pages=len(est.pages),
                              persons=est.persons, files=files, counts=counts)
    write_text_safely(out / MANIFEST, manifest.model_dump_json(indent=2, exclude={"out_dir"}) + "\n",
                      force=True)
    return manifest


"""The emulator's world, in memory: subscribers, campaigns, spend, cadence, accepted sends.

Pure logic with no I/O, so each rule (warm-up, start/end, cadence, opt-out, region, page,
budgets, frequency caps, rate windows) is one readable check and fast enough not to be the
executor's bottleneck. Errors are `EmuError(code, message)`, turned into Graph envelopes by the app.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable


from migrator.emulator import checks
from migrator.emulator.config import EmulatorConfig
from migrator.emulator.store import EmulatorStore, LastSent, SendLog
from migrator.emulator.subscribers import Subscriber, SubscriberStore
from migrator.emulator.texts import USER_TITLES
from migrator.emulator.usage_window import RollingWindow
from migrator.timeparse import DAY


class EmuError(Exception):
    """A Graph error the emulator answers with (envelope built by the app)."""

    def __init__(self, code: int, message: str, *, status: int = 400, subcode: int | None = None,
                 type: str = "OAuthException", error_data: dict | None = None,
                 is_transient: bool = False, user_msg: str | None = None, user_title: str | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.subcode = code, message, status, subcode
        self.type, self.error_data, self.is_transient, self.user_msg = type, error_data, is_transient, user_msg
        self.user_title = user_title


# Meta's error texts live with the emulator's own checks (emulator/texts.py).
from migrator.emulator.texts import MESSAGES  # noqa: E402


def _u(seed: int, *parts: Any) -> float:
    """A reproducible uniform [0, 1) from the seed and the parts (independent of request order)."""
    h = hashlib.blake2b(repr((seed,) + parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


@dataclass
class Campaign:
    id: str                      # the message (ad) id used as message_id
    campaign_id: str
    adset_id: str
    ad_account_id: str           # digits, no act_
    name: str
    page_id: str
    created_at: float
    start_time: float
    end_time: float | None
    daily_budget: int | None
    lifetime_budget: int | None
    pixel_id: str | None = None
    bid_amount: int | None = None
    spent: int = 0
    spent_by_day: dict[int, int] = field(default_factory=dict)
    sends: int = 0

    def ads_row(self) -> dict:
        """As `GET act_<ID>/ads?fields=id,adset{...},campaign{...}` shows it (budgets as strings)."""
        adset = {"id": self.adset_id, "name": self.name, "start_time": _iso(self.start_time)}
        if self.daily_budget is not None:
            adset["daily_budget"] = str(self.daily_budget)
        if self.lifetime_budget is not None:
            adset["lifetime_budget"] = str(self.lifetime_budget)
        if self.end_time is not None:
            adset["end_time"] = _iso(self.end_time)
        if self.pixel_id:
            adset["promoted_object"] = {"pixel_id": self.pixel_id}
        return {"id": self.id, "adset": adset,
                "campaign": {"id": self.campaign_id, "name": self.name, "is_message_campaign": True,
                             "is_direct_send_campaign": True},
                "creative": {"actor_id": self.page_id}}


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(int(t), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


@dataclass(slots=True)
class Send:
    time: float
    token: str
    message_id: str
    tracking_id: str
    page_id: str
    ad_account_id: str
    message: dict
    seq: int = 0                 # acceptance order in the store (1, 2, ...)


@dataclass
class Accepted:
    tracking_id: str
    send: Send
    subscriber: Subscriber
    campaign: Campaign


class EmulatorState:
    """Subscribers, campaigns and counters. Single event loop: no awaits inside a method, no locks."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float],
                 validator: Callable[[dict], list[tuple[int, str]]] | None = None):
        self.config = config
        self.clock = clock
        self.validator = validator
        # token -> Subscriber and page_id -> listable subscribers in order, in a compact SQLite store
        self.subscribers = SubscriberStore()
        self.listing = self.subscribers.listing
        # campaigns, sends, cadence and ids are durable (store.py); only campaigns are cached here
        self.store = EmulatorStore(config.state_path)
        self.campaigns: dict[str, Campaign] = {}
        self._load_campaigns()
        self.last_sent = LastSent(self.store)
        self.sends = SendLog(self.store, Send)
        self.errors: Counter[int] = Counter()
        self.rng = random.Random(config.seed)
        if not self.store.meta("next_id"):
            self.store.set_meta("next_id", 1)
        self._seq = self.store.last_seq()     # the last accepted send's number
        self._windows: dict[str, RollingWindow] = {}  # key -> its rolling usage window (usage_window.py)
        self.throttled_until = 0.0

    # ------------------------------------------------------------------ subscribers
    def add_subscribers(self, subs: Iterable[Subscriber]) -> int:
        """Add or replace subscribers (a replaced one keeps its place in its Page's listing)."""
        return self.subscribers.add(subs)

    def list_tokens(self, page_id: str, offset: int, limit: int) -> tuple[list[Subscriber], bool]:
        subs = self.listing.get(str(page_id), [])
        chunk = subs[offset:offset + limit + 1]
        return chunk[:limit], len(chunk) > limit

    def next_eligible(self, token: str) -> int | None:
        last = self.last_sent.get(token)
        return int(last + self.config.cadence_seconds) if last is not None else None

    # ------------------------------------------------------------------ ids and rate windows
    def _load_campaigns(self) -> None:
        self.campaigns = {}
        for d in self.store.load_campaigns():
            d["spent_by_day"] = {int(k): v for k, v in (d.get("spent_by_day") or {}).items()}
            c = Campaign(**d)
            self.campaigns[c.id] = c

    def new_id(self) -> str:
        n = self.store.next_counter("next_id")       # durable: ids never repeat after a restart
        return str(23850000000000000 + self.config.seed % 1000 * 10_000_000 + n)

    def tracking_id(self, seq: int | None = None) -> str:
        """A seeded UUID of the send's sequence number: reproducible, and unique across restarts."""
        n = self._seq + 1 if seq is None else seq
        h = hashlib.blake2b(repr((self.config.seed, "tracking", n)).encode(), digest_size=16).digest()
        return str(uuid.UUID(bytes=h, version=4))

    def count_call(self, key: str, limit: int) -> tuple[float, float]:
        """Count one call in `key`'s rolling window: (utilisation %, seconds until regained / reset)."""
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = RollingWindow(self.config.window_seconds)
        return w.count(self.clock(), limit)

    # ------------------------------------------------------------------ campaigns
    def create_campaign(self, ad_account_id: str, body: dict) -> Campaign:
        now = self.clock()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise EmuError(100, "(#100) The parameter name is required", type="OAuthException")
        page_id = body.get("page_id")
        if page_id in (None, ""):
            raise EmuError(2300065, MESSAGES[2300065])
        daily = _budget(body.get("daily_budget"), "daily_budget")
        lifetime = _budget(body.get("lifetime_budget"), "lifetime_budget")
        er = self.config.rules_view()
        currency = self.config.account_currencies.get(ad_account_id)
        if currency:
            try:
                checks.check_budgets(daily, lifetime, currency, er)
            except checks.Refusal as r:
                raise EmuError(r.code, r.message, user_title="Budget too low",
                               user_msg=r.detail) from None
        start = _time(body.get("start_time"), "start_time") if body.get("start_time") not in (None, "") else now
        if start < now - 3600:
            raise EmuError(100, "(#100) start_time must be now or in the future")
        if start > now + er.start_max_days_ahead * DAY:
            raise EmuError(100, f"(#100) start_time must be at most {er.start_max_days_ahead} days ahead")
        end = _time(body.get("end_time"), "end_time") if body.get("end_time") not in (None, "") else None
        if end is None and lifetime is not None:
            end = start + er.lifetime_min_days * DAY
        if end is not None and end <= start:
            raise EmuError(100, "(#100) end_time must be after start_time")
        c = Campaign(id=self.new_id(), campaign_id=self.new_id(), adset_id=self.new_id(),
                     ad_account_id=ad_account_id, name=name, page_id=str(page_id), created_at=now,
                     start_time=start, end_time=end, daily_budget=daily, lifetime_budget=lifetime,
                     pixel_id=str(body["pixel_id"]) if body.get("pixel_id") else None,
                     bid_amount=_budget(body.get("bid_amount"), "bid_amount"))
        self.campaigns[c.id] = c
        self.store.save_campaign(c)
        return c

    def campaign(self, object_id: str) -> Campaign:
        c = self.campaigns.get(object_id)
        if c is None:
            raise EmuError(100, f"(#100) Unsupported get request. Object with ID '{object_id}' does not "
                                "exist, cannot be loaded due to missing permissions, or does not support "
                                "this operation", subcode=33)
        return c

    def delete_campaign(self, object_id: str) -> None:
        self.campaign(object_id)
        del self.campaigns[object_id]
        self.store.delete_campaign(object_id)

    # ------------------------------------------------------------------ sending
    def send(self, ad_account_id: str, body: dict) -> Accepted:
        """All documented send checks, in the order a request meets them; raises EmuError."""
        now = self.clock()
        cfg = self.config
        message_id = body.get("message_id")
        mdd = body.get("messenger_delivery_data")
        message = body.get("message")
        if message_id in (None, ""):
            raise EmuError(100, "(#100) The parameter message_id is required")
        if not isinstance(mdd, dict) or not isinstance(mdd.get("subscription_token"), str) \
                or not mdd["subscription_token"]:
            raise EmuError(100, "(#100) messenger_delivery_data.subscription_token is required")
        token = mdd["subscription_token"]
        c = self.campaigns.get(str(message_id))
        if c is None:
            raise EmuError(2300001, MESSAGES[2300001])
        if c.ad_account_id != ad_account_id:
            raise EmuError(2300014, MESSAGES[2300014])
        if now < c.start_time:
            raise EmuError(2300033, MESSAGES[2300033])
        if c.end_time is not None and now >= c.end_time:
            raise EmuError(2300000, MESSAGES[2300000])
        age = now - max(c.created_at, c.start_time)
        if age < cfg.warmup_seconds:
            code = 2300012 if age < cfg.warmup_seconds / 2 else 2300041
            raise EmuError(code, MESSAGES[code])
        if not isinstance(message, dict) or not (message.get("text") or message.get("attachment")):
            raise EmuError(2300010, MESSAGES[2300010])
        if self.validator is not None:
            problems = self.validator(message)
            if problems:
                code, detail = problems[0]
                raise EmuError(code, detail, user_title=USER_TITLES.get(code),
                               user_msg=detail if code in USER_TITLES else None)
        gap = body.get("min_conversation_gap_seconds")
        if gap is not None and not (isinstance(gap, int) and not isinstance(gap, bool) and gap > 0):
            raise EmuError(100, "(#100) min_conversation_gap_seconds must be a positive integer")
        sub = self.subscribers.get(token)
        if sub is None:
            raise EmuError(2300004, MESSAGES[2300004])
        if sub.page_id != c.page_id:
            raise EmuError(2300005, MESSAGES[2300005])
        if sub.opted_out:
            raise EmuError(2300034, MESSAGES[2300034])
        if sub.expired:
            raise EmuError(2300037, MESSAGES[2300037])
        if sub.wrong_region or (sub.region is not None and sub.region in cfg.excluded_regions):
            raise EmuError(2300032, MESSAGES[2300032])
        # min_conversation_gap_seconds (Meta's MM send-messages page): refused when organic Page<->user thread
        # activity (the subscriber's last_organic_at) happened within that many seconds
        if gap is not None and sub.last_organic_at is not None and now - sub.last_organic_at < gap:
            raise EmuError(2300052, MESSAGES[2300052])
        last = self.last_sent.get(token)
        if last is not None and now - last < cfg.cadence_seconds:
            raise EmuError(2300035, MESSAGES[2300035])
        if cfg.fcap_rate and _u(cfg.seed, "fcap", token, c.id, int(now // DAY)) < cfg.fcap_rate:
            code = 2300042 + int(_u(cfg.seed, "fcap-kind", token, c.id) * 3)
            raise EmuError(code, MESSAGES[code])
        cost = cfg.cost_per_message
        if c.lifetime_budget is not None and c.spent + cost > c.lifetime_budget:
            raise EmuError(2300053, MESSAGES[2300053])
        # the daily budget resets at midnight in the ad account's own time zone; a day may spend
        # +overspend % and a Sunday-Saturday week 7x the daily budget (rules; Meta's MM send-messages page)
        tz = cfg.account_timezones.get(c.ad_account_id, cfg.default_account_timezone)
        day = checks.account_day(now, tz)
        week = checks.account_week(now, tz)
        if c.daily_budget is not None:
            this_week = sum(v for d, v in c.spent_by_day.items() if week <= d < week + 7)
            if not checks.daily_budget_allows(c.daily_budget, c.spent_by_day.get(day, 0), this_week,
                                              cost, cfg.rules_view()):
                raise EmuError(2300054, MESSAGES[2300054], user_title=USER_TITLES[2300054])
        # accepted: charge (every accepted send is delivered in the emulator), remember, record
        c.spent += cost
        c.spent_by_day[day] = c.spent_by_day.get(day, 0) + cost
        c.sends += 1
        self._seq += 1
        tid = self.tracking_id(self._seq)
        s = Send(now, token, c.id, tid, c.page_id, ad_account_id, message, self._seq)
        # committed before the answer leaves: what the client is told "sent" survives a kill
        self.store.accept(s, cost, day)
        return Accepted(tid, s, sub, c)

    # ------------------------------------------------------------------ estimate
    def estimate(self, page_id: str | None, daily: int | None, lifetime: int | None,
                 days: int | None) -> dict:
        """Delivery/cost bounds from the deliverable audience and the budget (counts of sends)."""
        cfg = self.config
        audience = self.subscribers.audience(str(page_id), cfg.excluded_regions) if page_id else 0
        budget = lifetime if lifetime is not None else (daily * (days or 1) if daily is not None else None)
        cap = audience if budget is None else min(audience, budget // max(cfg.cost_per_message, 1))
        lower = int(cap * (1 - cfg.fcap_rate) * 0.9)
        return {"estimate_delivery_upper_bound": cap, "estimate_delivery_lower_bound": lower,
                "estimate_cost_upper_bound": cap * cfg.cost_per_message,
                "estimate_cost_lower_bound": lower * cfg.cost_per_message}

    # ------------------------------------------------------------------ snapshot
    def reset(self) -> None:
        self.store.clear()
        self._seq = self.store.last_seq()
        self.campaigns.clear()
        self.errors.clear()
        self._windows.clear()
        self.throttled_until = 0.0

    def snapshot(self) -> dict:
        return {"campaigns": [asdict(c) for c in self.campaigns.values()],
                "last_sent": dict(self.last_sent.items()), "sends": [_send_json(s) for s in self.sends],
                "errors": {str(k): v for k, v in self.errors.items()}, "next_id": self.store.meta("next_id"),
                "seq": self._seq}

    def restore(self, snap: dict) -> None:
        """Load a JSON snapshot into the (empty) store: the export format of `--snapshot`."""
        if len(self.sends) or self.campaigns:
            return      # the durable state is newer than any snapshot
        for d in snap.get("campaigns", []):
            d = dict(d)
            d["spent_by_day"] = {int(k): v for k, v in (d.get("spent_by_day") or {}).items()}
            c = Campaign(**d)
            self.campaigns[c.id] = c
            self.store.save_campaign(c)
        self._seq = max(self._seq, int(snap.get("seq", 0)))
        for d in snap.get("sends", []):
            self._seq += 1
            s = Send(d["time"], d["token"], d["message_id"], d["tracking_id"], d["page_id"], d["ad_account_id"],
                     d["message"], self._seq)
            tz = self.config.account_timezones.get(s.ad_account_id, self.config.default_account_timezone)
            self.store.accept(s, self.config.cost_per_message, checks.account_day(s.time, tz))
        for k, v in snap.get("last_sent", {}).items():
            self.last_sent[k] = float(v)
        self.errors = Counter({int(k): v for k, v in snap.get("errors", {}).items()})
        self.store.set_meta("next_id", max(self.store.meta("next_id"), int(snap.get("next_id", 1))))


def _send_json(s: Send) -> dict:
    return {"time": s.time, "token": s.token, "message_id": s.message_id, "tracking_id": s.tracking_id,
            "page_id": s.page_id, "ad_account_id": s.ad_account_id, "message": s.message}


def _budget(v: Any, name: str) -> int | None:
    if v is None or v == "":
        return None
    try:
        n = int(str(v))
    except ValueError:
        raise EmuError(100, f"(#100) {name} must be an integer in the currency's minor unit") from None
    if n <= 0:
        raise EmuError(100, f"(#100) {name} must be greater than 0")
    return n


def _time(v: Any, name: str) -> float:
    """Unix timestamp or ISO 8601 datetime, as Graph accepts."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    s = str(v).strip()
    if s.isdigit():
        return float(s)
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise EmuError(100, f"(#100) {name} must be a Unix timestamp or an ISO 8601 datetime") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()

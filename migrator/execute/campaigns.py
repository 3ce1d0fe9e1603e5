"""Idempotent campaign setup: create each planned campaign once, record its id before any send.

Order of a setup: mark the row `creating` (committed) -> look up a campaign of the same name
in the ad account (`find_campaign`) -> only if none, create it -> record the id (committed).
A crash between create and record is therefore healed by the lookup: never a twin campaign.

At setup the ad account's time zone (`timezone_name`) is read once per account and recorded with
each campaign (`exec_campaign_zones`): a daily budget resets at the start of the account's own day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from migrator.execute.ledger import transaction
from migrator.execute.outcomes import backoff
from migrator.graph import AccountFatal, GraphError, NetworkError, RetryLater


@dataclass
class CampaignRun:
    """A campaign's state during a run (mirrors exec_campaigns; the engine mutates it)."""

    key: str
    name: str
    ad_account_id: str
    page_id: str
    cost_per_message: int
    message_id: str | None = None
    state: str = "pending"          # pending | ready | warming | probing | paused | stopped | failed
    created_at: float | None = None
    found_existing: bool = False
    created_now: bool = False
    reason: str | None = None
    error: str | None = None
    next_probe_at: float | None = None
    paused_until: float | None = None
    warmup_code: int | None = None
    warmup_probes: int = 0          # warm-up checks so far in this run (the poll backs off)
    account_timezone: str | None = None   # the ad account's IANA zone (None: unknown, UTC assumed)
    stopped_messages: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"key": self.key, "name": self.name, "message_id": self.message_id, "state": self.state,
                "created": self.created_now, "reused": self.found_existing and not self.created_now,
                "reason": self.reason, "error": self.error}


def load_campaigns(ledger, plan) -> dict[str, CampaignRun]:
    """The plan's campaigns with what the ledger already knows (ids, stops) merged in."""
    t = ledger.table("exec_campaigns")
    out: dict[str, CampaignRun] = {}
    with transaction(ledger.conn):
        for c in plan.campaigns:
            ledger.conn.execute(f"INSERT OR IGNORE INTO {t} (plan_id, campaign_key, name, ad_account_id, page_id) "
                                "VALUES (?, ?, ?, ?, ?)", (plan.plan_id, c.key, c.name, c.ad_account_id, c.page_id))
            row = ledger.conn.execute(f"SELECT message_id, state, created_at, found_existing, reason, error, "
                                      f"paused_until FROM {t} WHERE plan_id = ? AND campaign_key = ?",
                                      (plan.plan_id, c.key)).fetchone()
            cr = CampaignRun(c.key, c.name, c.ad_account_id, c.page_id, c.cost_per_message, message_id=row[0],
                             state=row[1], created_at=row[2], found_existing=bool(row[3]), reason=row[4],
                             error=row[5], paused_until=row[6])
            if cr.state in ("creating", "failed") or (cr.state == "pending" and cr.message_id):
                cr.state = "ready" if cr.message_id else "pending"
            if cr.state in ("warming", "probing"):
                cr.state = "probing"      # a new run tries once straight away
            out[c.key] = cr
        if ledger.schema == "main":            # a dry run neither reads nor writes what a real run recorded
            for key, zone in ledger.conn.execute("SELECT campaign_key, timezone_name FROM exec_campaign_zones "
                                                 "WHERE plan_id = ?", (plan.plan_id,)):
                if key in out:
                    out[key].account_timezone = zone
    return out


def record_zone(ledger, plan_id: str, c: CampaignRun, zone: str, source: str, now: float) -> None:
    """Remember the ad account's time zone for this campaign (workspace ledger only)."""
    c.account_timezone = zone
    if ledger.schema != "main":
        return
    with transaction(ledger.conn):
        ledger.conn.execute("INSERT OR REPLACE INTO exec_campaign_zones (plan_id, campaign_key, ad_account_id, "
                            "timezone_name, source, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
                            (plan_id, c.key, c.ad_account_id, zone, source, int(now)))


async def account_timezone(client, ad_account_id: str) -> tuple[str | None, str]:
    """(`timezone_name`, where it came from) of an ad account, read through the Graph client.

    `GET act_<ID>?fields=timezone_name` (Marketing API ad account). An answer that is not an IANA
    zone, or a refusal, gives (None, why): the caller assumes UTC and says so.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from migrator.graph import act

    try:
        body = await client.call("GET", act(ad_account_id), params={"fields": "timezone_name"})
    except GraphError as err:
        return None, f"not readable ({_short(err)[:120]})"
    name = body.get("timezone_name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        return None, "not in the ad account's answer"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"not a known time zone name ({name[:60]!r})"
    return name, f"act_{str(ad_account_id).removeprefix('act_')}.timezone_name"


def save_campaign(ledger, plan_id: str, c: CampaignRun, now: float) -> None:
    state = "warming" if c.state == "probing" else c.state
    with transaction(ledger.conn):
        ledger.conn.execute(
            f"UPDATE {ledger.table('exec_campaigns')} SET message_id = ?, state = ?, created_at = ?, found_existing = ?, "
            "ready_at = CASE WHEN ? = 'ready' AND ready_at IS NULL THEN ? ELSE ready_at END, paused_until = ?, "
            "reason = ?, error = ? WHERE plan_id = ? AND campaign_key = ?",
            (c.message_id, state, int(c.created_at) if c.created_at else None, int(c.found_existing), state,
             int(now), int(c.paused_until) if c.paused_until else None, c.reason, c.error, plan_id, c.key))


async def existing_by_name(client, ad_account_id: str) -> dict[str, str]:
    """name -> message id of the ad account's campaigns (one listing for a whole setup)."""
    out: dict[str, str] = {}
    async for ad in client.list_campaigns(ad_account_id):
        name = (ad.get("campaign") or {}).get("name")
        if name and ad.get("id") and name not in out:
            out[name] = str(ad["id"])
    return out


async def ensure_campaign(ledger, plan, pc, c: CampaignRun, client, *, clock, sleep, notify,
                          known: dict[str, str] | None = None, max_attempts: int = 6,
                          rng: random.Random | None = None, dry_run: bool = False, stop=None) -> None:
    """Give `c` a message id: reuse the recorded one, else find by name, else create. Raises AccountFatal.

    `known` is a listing made at the start of this setup (name -> id); after a failed attempt the
    lookup is made again, since an ambiguous create may have gone through. A dry run (the recording
    transport answers) says what it would do: "would reuse", "would create".

    Other campaigns are set up at the same time (engine._ensure_campaigns): while this one waits
    for an answer, a sibling's set-up refusal may stop its page (`c.state` is then `failed`,
    reason `setup:<code>`). The answer is still recorded (a created campaign's id is never lost,
    the next run reuses it) but never turns a stopped campaign back into a ready one. `stop`
    (Ctrl-C): no further attempt after a backoff the stop cut short.
    """
    if c.message_id:
        return
    c.state = "creating"
    save_campaign(ledger, plan.plan_id, c, clock())
    attempt = 0
    while True:
        attempt += 1
        try:
            if known is not None and attempt == 1:
                found = {"id": known[c.name]} if c.name in known else None
            else:
                found = await client.find_campaign(c.ad_account_id, c.name)
            if found and found.get("id"):
                c.message_id, c.found_existing = str(found["id"]), True
                notify(f"campaign {c.key} {c.name!r}: would reuse existing {c.message_id}" if dry_run
                       else f"campaign {c.key} {c.name!r}: reusing existing {c.message_id}")
            else:
                now = clock()
                kw = {"daily_budget": pc.daily_budget, "lifetime_budget": pc.lifetime_budget}
                if pc.start_time > now + 60:          # Meta: start must be now or later
                    kw["start_time"] = pc.start_time
                if pc.end_time:
                    kw["end_time"] = pc.end_time
                body = await client.create_campaign(c.ad_account_id, name=c.name, page_id=c.page_id, **kw)
                if not isinstance(body, dict) or not body.get("id"):
                    # Meta may have created it: an ambiguous answer, healed by the next look-up
                    raise NetworkError("the campaign create was answered without an id", kind="bad_response")
                c.message_id, c.created_now = str(body["id"]), True
                notify(f"campaign {c.key} {c.name!r}: would create it" if dry_run
                       else f"campaign {c.key} {c.name!r}: created {c.message_id}")
            c.created_at = clock()
            if c.state == "creating":        # not stopped meanwhile by a sibling's set-up refusal
                c.state = "ready"
            save_campaign(ledger, plan.plan_id, c, clock())
            return
        except AccountFatal:
            if c.state == "creating":
                c.state = "pending"
                save_campaign(ledger, plan.plan_id, c, clock())
            raise
        except RetryLater as err:   # incl. network failures; an ambiguous create is healed by the lookup
            if attempt >= max_attempts:
                if c.state != "creating":
                    return
                c.state, c.error = "failed", _short(err)
                save_campaign(ledger, plan.plan_id, c, clock())
                return
            wait = max(err.wait_seconds or 0, backoff(attempt, rng=rng))
            kind = "network" if isinstance(err, NetworkError) else "throttled"
            notify(f"campaign {c.key}: {kind} ({_short(err)}), retrying in {wait:.0f} s")
            await sleep(wait)
            if (stop is not None and stop.is_set()) or c.state != "creating":
                if c.state == "creating":    # Ctrl-C: not a campaign that could not be set up
                    c.state = "pending"
                    save_campaign(ledger, plan.plan_id, c, clock())
                return
        except GraphError as err:
            if c.state != "creating":        # its page was stopped meanwhile: keep that reason
                return
            c.state, c.error = "failed", _short(err)
            save_campaign(ledger, plan.plan_id, c, clock())
            notify(f"campaign {c.key} {c.name!r}: cannot be set up: {c.error}")
            return


def _short(err: GraphError) -> str:
    return err.message[:300]

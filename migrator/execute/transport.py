"""The dry run's transport: every request is validated and answered locally, nothing leaves.

A dry run drives the executor's real code (campaign setup, ledger transitions, pacing) through
this httpx transport instead of the network. It answers what the executor reads: a campaign
id for message_campaign, an empty ads listing (no existing campaigns), and for a send
`{"success": true, "marketing_message_tracking_id"}`. Sends are checked for shape
(message_id, the subscription token) and the message with the converter's MM validator
(`migrator.convert.validate_mm_message`); a message Meta would refuse gets a Graph error with
the MM code the validator names. The record keeps counts only (no tokens). It is plain httpx:
no server, no emulator.
"""

from __future__ import annotations

import itertools
from collections import Counter

import httpx
import orjson


def _err(code: int, message: str, status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": "OAuthException", "code": code,
                                                  "fbtrace_id": "dryrun"}})


def _validator():
    """(MM code, message) per problem the converter's validator finds in an MM message.

    A problem without an MM code (none documented for it) is answered as Graph's (#100).
    """
    from migrator.convert import validate_mm_message

    def validate(message) -> list[tuple[int, str]]:
        return [(p.mm_error_code or 100, f"(#{p.mm_error_code or 100}) {p.code}: {p.detail}")
                for p in validate_mm_message(message)]

    return validate


class RecordingTransport(httpx.AsyncBaseTransport):
    """Answers message_campaign, ads listing and messages calls locally, and counts them."""

    def __init__(self):
        self._validate = _validator()
        self._ids = itertools.count(1)
        self.campaigns_created: list[dict] = []
        self.sends = Counter()          # message_id -> accepted sends
        self.refused = Counter()        # (message_id, code) -> refused sends
        self._valid_cache: dict[bytes, list] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        body = await request.aread()
        if request.method == "GET" and path.endswith("/ads"):
            return httpx.Response(200, json={"data": []})
        if request.method == "POST" and path.endswith("/message_campaign"):
            data = orjson.loads(body or b"{}")
            if not data.get("name"):
                return _err(100, "(#100) The parameter name is required")
            if not data.get("page_id"):
                return _err(2300065, "page_id is missing.")
            cid = f"dryrun-{next(self._ids)}"
            self.campaigns_created.append({"id": cid, "name": data["name"], "page_id": data["page_id"]})
            return httpx.Response(200, json={"id": cid})
        if request.method == "POST" and path.endswith("/messages"):
            data = orjson.loads(body or b"{}")
            mid = str(data.get("message_id") or "")
            token = (data.get("messenger_delivery_data") or {}).get("subscription_token")
            if not mid:
                return _err(100, "(#100) The parameter message_id is required")
            if not token:
                return _err(100, "(#100) The parameter messenger_delivery_data is required")
            key = orjson.dumps(data.get("message"), option=orjson.OPT_SORT_KEYS)
            problems = self._valid_cache.get(key)
            if problems is None:
                problems = self._valid_cache[key] = self._validate(data.get("message"))
            if problems:
                code, text = problems[0]
                self.refused[(mid, code)] += 1
                return _err(code, text)
            self.sends[mid] += 1
            return httpx.Response(200, json={"success": True,
                                             "marketing_message_tracking_id": f"dryrun-{next(self._ids)}"})
        return _err(100, f"(#100) the dry run does not answer {request.method} {path}")

    def to_json(self) -> dict:
        by_code: Counter = Counter()
        for (_, code), n in self.refused.items():
            by_code[str(code)] += n
        return {"campaigns_created": len(self.campaigns_created), "sends_accepted": sum(self.sends.values()),
                "sends_refused": sum(self.refused.values()), "refused_by_code": dict(by_code)}

"""The emulator's ASGI app: Graph paths and shapes for the token listing and the MM endpoints.

Accepts what Meta accepts: version prefix in the path (or none), JSON or form-encoded bodies
(nested objects JSON-encoded inside form fields), the access token in the `Authorization` header,
the query string or the form. Answers with Graph's error envelope and HTTP statuses, usage headers
on every response, and records what it accepted under `/_emulator/`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from migrator.emulator.assets import Assets
from migrator.emulator.clock import VirtualClock, WallClock
from migrator.emulator.config import EmulatorConfig
from migrator.emulator import checks
from migrator.emulator.batch import answer_batch
from migrator.emulator.state import EmulatorState, EmuError
from migrator.emulator.subscribers import Subscriber, subscriber_from_dict
from migrator.emulator.texts import ADS_THROTTLE_MESSAGE, ADS_THROTTLE_SUBCODE, MESSAGES, USER_TITLES
from migrator.emulator.webhooks import WebhookWriter

INPROCESS_HEADER = "x-emulator-inprocess"
_VERSION = re.compile(r"^v\d+\.\d+$")
_LIST_DEFAULT_FIELDS = ("notification_messages_token", "recipient_id", "creation_timestamp",
                        "token_expiry_timestamp", "user_token_status", "notification_messages_reoptin", "notification_messages_timezone",
                        "topic_title", "next_eligible_time", "next_eligible_time_for_paid_messaging", "id")


class EmulatedTimeout(Exception):
    """In-process: the answer never comes (the transport raises httpx.ReadTimeout)."""


class EmulatedReset(Exception):
    """The connection is closed mid-response (in-process: httpx.RemoteProtocolError)."""


class _DropEmulatedResets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, EmulatedReset)


def _json(data: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type="application/json")


class _Req:
    """The parts of an HTTP request the Graph handler needs (no Starlette objects on the hot path)."""

    __slots__ = ("method", "path", "query", "headers", "body", "scheme", "host")

    def __init__(self, method: str, path: str, query: bytes, headers: dict[str, str], body: bytes,
                 scheme: str = "http", host: str = "localhost"):
        self.method, self.path, self.query, self.headers = method, path, query, headers
        self.body, self.scheme, self.host = body, scheme, host


class _Out:
    """An answer: status, JSON (or other) bytes, extra headers; `fault` = "reset" / "timeout"."""

    __slots__ = ("status", "body", "headers", "content_type", "fault")

    def __init__(self, status: int, body: bytes, headers: dict | None = None,
                 content_type: str = "application/json", fault: str | None = None):
        self.status, self.body, self.headers = status, body, headers or {}
        self.content_type, self.fault = content_type, fault


def _ok(data: Any, headers: dict) -> _Out:
    return _Out(200, orjson.dumps(data), headers)


def _decode_value(v: str) -> Any:
    """Form fields carry nested objects as JSON text (as Meta's SDKs send them)."""
    s = v.strip()
    if s[:1] in ("{", "[") or s in ("true", "false", "null") or re.fullmatch(r"-?\d+", s or "x"):
        try:
            return json.loads(s)
        except ValueError:
            return v
    return v


class Emulator:
    """Holds state, config, faults RNG and the webhook writer; `handle` answers one Graph call."""

    def __init__(self, config: EmulatorConfig, validator=None, assets: Assets | None = None):
        self.config = config
        self.assets = (assets or Assets()).bind(config)   # permissions, ad accounts, Pages (emulator/assets.py)
        self.clock = config.clock or WallClock()
        self.state = EmulatorState(config, self.clock, validator)
        self.fault_rng = random.Random(config.seed ^ 0xFA17)
        self.webhooks = (WebhookWriter(config.webhooks_path, app_id=config.app_id, seed=config.seed,
                                       read_rate=config.read_rate, business_id=config.business_id,
                                       delivery_failed_rate=config.faults.delivery_failed_rate,
                                       click_rate=config.faults.click_rate)
                         if config.webhooks_path else None)
        self.requests = 0
        if config.snapshot_path and Path(config.snapshot_path).exists():
            try:
                self.state.restore(orjson.loads(Path(config.snapshot_path).read_bytes()))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # anything but a snapshot this emulator saved: say so (no traceback), and never
                # overwrite it at exit
                from migrator.errors import InputError

                raise InputError(f"not an emulator snapshot ({type(exc).__name__}: {str(exc)[:120]})",
                                 path=str(config.snapshot_path),
                                 hint="pass --snapshot with a new path or one an earlier `emulator serve` "
                                      "saved") from None
        if self.webhooks:
            self.webhooks.on_flush = lambda seq: self.state.store.set_meta("hooks_upto", seq)

    def replay_unhooked(self) -> int:
        """Write the webhook lines of sends accepted after the last written ones (a killed emulator
        had them in its buffer). Meta retries undelivered webhooks; a repeat is a duplicate to ingest."""
        from migrator.emulator.state import Accepted

        if not self.webhooks:
            return 0
        n = 0
        for send in self.state.sends.after(self.state.store.meta("hooks_upto")):
            sub = self.state.subscribers.get(send.token)
            c = self.state.campaigns.get(send.message_id)
            if sub is not None and c is not None:
                self.webhooks.accepted(Accepted(send.tracking_id, send, sub, c))
                n += 1
        self.webhooks.flush()
        return n

    @property
    def virtual(self) -> bool:
        return bool(getattr(self.clock, "virtual", False))

    def close(self) -> None:
        if self.webhooks:
            self.webhooks.close()
            self.webhooks = None
        self.save_snapshot()

    def save_snapshot(self) -> None:
        """Write the snapshot 0600 (it holds raw subscription tokens), atomically, never through
        a symlink; an existing file was read as a snapshot at start (anything else was refused)."""
        if self.config.snapshot_path:
            from migrator.outputs import safe_output

            data = orjson.dumps(self.state.snapshot(), option=orjson.OPT_NON_STR_KEYS)
            with safe_output(self.config.snapshot_path, force=True, binary=True, mode=0o600) as f:
                f.write(data)

    # ------------------------------------------------------------------ request parsing
    def _params(self, request: _Req) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if request.query:
            params.update((k, _decode_value(v)) for k, v in parse_qsl(request.query.decode("latin-1"),
                                                                         keep_blank_values=True))
        if request.method in ("POST", "DELETE"):
            raw = request.body
            if raw:
                ctype = request.headers.get("content-type", "")
                if "json" in ctype or raw[:1] in (b"{", b"["):
                    try:
                        body = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        raise EmuError(100, "(#100) The request body is not valid JSON") from None
                    if not isinstance(body, dict):
                        raise EmuError(100, "(#100) The request body must be a JSON object")
                    params.update(body)
                else:
                    try:
                        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
                    except UnicodeDecodeError:
                        raise EmuError(100, "(#100) The request body is not valid UTF-8") from None
                    params.update({k: _decode_value(v) for k, v in pairs})
        return params

    @staticmethod
    def _access_token(request: _Req, params: dict) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() in ("bearer", "oauth") and value.strip():
                return value.strip()
        tok = params.pop("access_token", None)
        return str(tok) if tok else None

    # ------------------------------------------------------------------ faults
    def _latency(self) -> float:
        f = self.config.faults
        r = self.fault_rng
        if f.latency_distribution == "uniform":
            ms = r.uniform(f.latency_min_ms, f.latency_max_ms)
        elif f.latency_distribution == "lognormal":
            ms = f.latency_median_ms * math.exp(r.gauss(0, f.latency_sigma)) if f.latency_median_ms else 0.0
        else:
            ms = f.latency_median_ms
        return max(f.latency_min_ms, min(ms, f.latency_max_ms)) / 1000.0

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0 and not self.virtual:
            await asyncio.sleep(seconds)

    def _fbtrace(self) -> str:
        return "A" + "".join(self.fault_rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
                             for _ in range(22))

    # ------------------------------------------------------------------ responses
    def _error(self, e: EmuError, headers: dict) -> _Out:
        self.state.errors[e.code] += 1
        err: dict[str, Any] = {"message": e.message, "type": e.type, "code": e.code}
        if e.subcode is not None:
            err["error_subcode"] = e.subcode
        title = getattr(e, "user_title", None) or USER_TITLES.get(e.code)
        if title:   # Graph sends these with errors meant for a person (texts.USER_TITLES)
            err["error_user_title"] = title
            err["error_user_msg"] = e.user_msg or e.message
        elif e.user_msg:
            err["error_user_msg"] = e.user_msg
        if e.error_data:
            err["error_data"] = e.error_data
        err["is_transient"] = e.is_transient
        err["fbtrace_id"] = self._fbtrace()
        return _Out(e.status, orjson.dumps({"error": err}), headers)

    def _usage_headers(self, kind: str, key: str | None) -> tuple[dict, EmuError | None]:
        """Count the call, build usage headers, and say whether a limit refuses it."""
        cfg = self.config
        st = self.state
        now = self.clock()
        app_pct, _ = st.count_call("app", cfg.app_calls_per_window)
        headers = {"x-app-usage": orjson.dumps({"call_count": min(int(app_pct), 100),
                                                "total_cputime": min(int(app_pct / 2), 100),
                                                "total_time": min(int(app_pct / 2), 100)}).decode()}
        refusal: EmuError | None = None
        burst_left = st.throttled_until - now
        if kind == "act" and key:
            pct, reset = st.count_call("act:" + key, cfg.account_calls_per_window)
            throttled = pct > 100 or burst_left > 0
            regain = max(burst_left, reset if pct > 100 else 0.0) if throttled else 0.0
            shown = 100.0 if throttled else pct
            headers["x-ad-account-usage"] = orjson.dumps({
                "acc_id_util_pct": round(shown, 2), "reset_time_duration": int(math.ceil(reset)),
                "ads_api_access_tier": "standard_access"}).decode()
            headers["x-business-use-case-usage"] = orjson.dumps({key: [{
                "type": "ads_management", "call_count": min(int(shown), 100),
                "total_cputime": min(int(shown / 2), 100), "total_time": min(int(shown / 2), 100),
                "estimated_time_to_regain_access": int(math.ceil(regain / 60)),
                "ads_api_access_tier": "standard_access"}]}).decode()
            if throttled:
                refusal = EmuError(80004, ADS_THROTTLE_MESSAGE, subcode=ADS_THROTTLE_SUBCODE,
                                   type="OAuthException", is_transient=True)
                refusal.regain = regain  # type: ignore[attr-defined]
        elif kind == "page" and key:
            pct, reset = st.count_call("page:" + key, cfg.listing_calls_per_window)
            throttled = pct > 100 or burst_left > 0
            regain = max(burst_left, reset if pct > 100 else 0.0) if throttled else 0.0
            headers["x-business-use-case-usage"] = orjson.dumps({key: [{
                "type": "pages", "call_count": 100 if throttled else min(int(pct), 100),
                "total_cputime": min(int(pct / 2), 100), "total_time": min(int(pct / 2), 100),
                "estimated_time_to_regain_access": int(math.ceil(regain / 60))}]}).decode()
            if throttled:
                refusal = EmuError(2300080, MESSAGES[2300080], error_data={"remaining_seconds": int(math.ceil(regain))},
                                   is_transient=True)
        if refusal is None and app_pct > 100:
            refusal = EmuError(4, "(#4) Application request limit reached", is_transient=True)
        return headers, refusal

    async def handle(self, request: _Req, *, inner: bool = False) -> _Out:
        """Answer one Graph call: faults, usage counting, auth, then the endpoint.

        `inner`: a call inside a batch request (emulator/batch.py): the batch already waited
        out the network latency once for all its calls."""
        self.requests += 1
        f = self.config.faults
        parts = [p for p in request.path.split("/") if p]
        if parts and _VERSION.match(parts[0]):
            parts = parts[1:]
        kind, key = "other", None
        if parts and parts[0].startswith("act_"):
            kind, key = "act", parts[0]
        elif len(parts) == 2 and parts[1] == "notification_message_tokens":
            kind, key = "page", parts[0]
        if (f.latency_median_ms or f.latency_min_ms) and not inner:
            await self._sleep(self._latency())
        if f.throttle_burst_rate and self.fault_rng.random() < f.throttle_burst_rate \
                and self.state.throttled_until <= self.clock():
            self.state.throttled_until = self.clock() + f.throttle_burst_seconds
        headers, refusal = self._usage_headers(kind, key)
        if f.http_5xx_rate and self.fault_rng.random() < f.http_5xx_rate:
            if self.fault_rng.random() < 0.5:
                return self._error(EmuError(2, "An unexpected error has occurred. Please retry your request "
                                               "later.", status=503, is_transient=True), headers)
            return _Out(502, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        timeout = bool(f.timeout_rate) and self.fault_rng.random() < f.timeout_rate
        reset = bool(f.reset_rate) and self.fault_rng.random() < f.reset_rate
        if timeout and not f.timeout_after_processing:
            return _Out(504, b"", fault="timeout")
        try:
            params = self._params(request)
            token = self._access_token(request, params)
            if not token:
                raise EmuError(104, "An access token is required to request this resource.")
            if refusal is not None:
                # MM's own limit codes for its own edges (Meta's MM API reference): 2300078 for sends,
                # 2300079 for campaign creation; other act_ calls get Graph's 80004/2446079
                mm_limit = {"messages": 2300078, "message_campaign": 2300079}.get(
                    parts[1] if kind == "act" and len(parts) == 2 else "")
                if mm_limit and refusal.code == 80004:
                    regain = getattr(refusal, "regain", 60.0)
                    refusal = EmuError(mm_limit, MESSAGES[mm_limit], is_transient=True,
                                       error_data={"remaining_seconds": int(math.ceil(regain))})
                raise refusal
            injected = self._injected_code(parts, request.method)
            if injected is not None:
                raise injected
            if not parts and request.method == "POST" and "batch" in params and not inner:
                response = await answer_batch(self, params, token, headers)
            else:
                response = self._dispatch(request.method, parts, params, token, request, headers)
        except EmuError as e:
            response = self._error(e, headers)
        if timeout:
            response.fault = "timeout"
        elif reset:
            response.fault = "reset"
        return response

    def _injected_code(self, parts: list[str], method: str) -> EmuError | None:
        """A documented error code from the fault profile's [codes] table.

        Campaign-creation codes (2300007, 2300064, 2300065, 2300079, ToS/region/payment codes)
        answer POST act_/message_campaign; every other code answers POST act_/messages.
        """
        codes = self.config.faults.codes
        if not codes or method != "POST" or len(parts) != 2 or not parts[0].startswith("act_"):
            return None
        edge = parts[1]
        for code, rate in codes.items():
            on_create = code in _CREATION_CODES
            if (edge == "message_campaign") != on_create or edge not in ("messages", "message_campaign"):
                continue
            if rate and self.fault_rng.random() < rate:
                data = {"remaining_seconds": _REMAINING.get(code, 0)} if code in _REMAINING else None
                return EmuError(code, MESSAGES[code], error_data=data, is_transient=code in _REMAINING)
        return None

    # ------------------------------------------------------------------ endpoints
    def _dispatch(self, method: str, parts: list[str], params: dict, token: str, request: _Req,
                  headers: dict) -> _Out:
        st = self.state
        body = self.assets.answer(method, parts, params, token, st)
        if body is not None:
            return _ok(body, headers)
        if len(parts) == 2 and parts[1] == "notification_message_tokens":
            _only(method, "GET")
            return _ok(self._list_tokens(parts[0], params, token, request), headers)
        if len(parts) == 2 and parts[0].startswith("act_"):
            acct = parts[0][4:]
            if not acct.isdigit():
                raise EmuError(100, f"(#100) Invalid ad account id {parts[0]!r}", subcode=33)
            edge = parts[1]
            if edge == "message_campaign":
                _only(method, "POST")
                return _ok({"id": st.create_campaign(acct, params).id}, headers)
            if edge == "messages":
                _only(method, "POST")
                c = st.campaigns.get(str(params.get("message_id")))
                if c is not None and c.ad_account_id == acct:
                    self.assets.check_send(acct, c.page_id)
                accepted = st.send(acct, params)
                if self.webhooks:
                    self.webhooks.accepted(accepted)
                return _ok({"success": True, "marketing_message_tracking_id": accepted.tracking_id},
                             headers=headers)
            if edge == "message_delivery_estimate":
                _only(method, "GET")
                po = params.get("promoted_object")
                page_id = po.get("page_id") if isinstance(po, dict) else None
                row = st.estimate(str(page_id) if page_id is not None else None,
                                  _int(params.get("daily_budget")), _int(params.get("lifetime_budget")),
                                  _int(params.get("lifetime_in_days")))
                return _ok({"data": [_fields(row, params.get("fields"))]}, headers)
            if edge == "ads":
                _only(method, "GET")
                rows = [c.ads_row() for c in st.campaigns.values() if c.ad_account_id == acct]
                return _ok(self._paged(rows, params, token, request), headers)
            raise EmuError(2500, f"Unknown path components: /{edge}", type="OAuthException")
        if len(parts) == 1 and parts[0] in st.campaigns:
            if method == "DELETE":
                st.delete_campaign(parts[0])
                return _ok({"success": True}, headers)
            _only(method, "GET")
            c = st.campaign(parts[0])
            row = c.ads_row()
            return _ok({"id": row["id"], "campaign": {"name": c.name, "id": c.campaign_id},
                          "creative": row["creative"], "adset": row["adset"]}, headers)
        if len(parts) == 1:
            st.campaign(parts[0])  # raises the Graph "does not exist" error
        raise EmuError(2500, "Unknown path components: /" + "/".join(parts), type="OAuthException")

    def _paged(self, rows: list, params: dict, token: str, request: _Req, *, max_limit: int = 1000,
               default_limit: int = 100) -> dict:
        limit = max(1, min(_int(params.get("limit")) or default_limit, max_limit))
        offset = _cursor_offset(params.get("after"))
        chunk = rows[offset:offset + limit]
        out: dict[str, Any] = {"data": chunk}
        if chunk:
            out["paging"] = {"cursors": {"before": _cursor(offset), "after": _cursor(offset + len(chunk))}}
            if offset + limit < len(rows):
                out["paging"]["next"] = self._next_url(request, params, token, limit, offset + len(chunk))
        return out

    def _next_url(self, request: _Req, params: dict, token: str, limit: int, offset: int) -> str:
        # Like Meta's, the next URL carries the access token: clients must follow cursors instead.
        q = {k: (v if isinstance(v, str) else orjson.dumps(v).decode()) for k, v in params.items()
             if k not in ("after", "limit", "access_token")}
        q.update({"access_token": token, "limit": str(limit), "after": _cursor(offset)})
        return f"{request.scheme}://{request.host}{request.path}?{urlencode(q)}"

    def _list_tokens(self, page_id: str, params: dict, token: str, request: _Req) -> dict:
        owned = self.config.page_tokens
        if owned is not None and owned.get(str(page_id)) != token:
            # a Page token reads only its own Page (Meta's MM examples use a Page token for Page edges;
                # Graph error 100/33 otherwise)
            raise EmuError(100, f"(#100) Unsupported get request. Object with ID '{page_id}' does not exist, "
                                "cannot be loaded due to missing permissions, or does not support this "
                                "operation", subcode=33)
        limit = max(1, min(_int(params.get("limit")) or 100, 1000))
        offset = _cursor_offset(params.get("after"))
        keep = _listing_filter(params, self.state)
        if keep is None:
            subs, more = self.state.list_tokens(page_id, offset, limit)
        else:
            every = [s for s in self.state.listing.get(str(page_id), []) if keep(s)]
            subs, more = every[offset:offset + limit], offset + limit < len(every)
        wanted = params.get("fields")
        fields = [f.strip() for f in str(wanted).split(",") if f.strip()] if wanted else _LIST_DEFAULT_FIELDS
        data = [self._token_item(s, fields) for s in subs]
        out: dict[str, Any] = {"data": data}
        if data:
            out["paging"] = {"cursors": {"before": _cursor(offset), "after": _cursor(offset + len(data))}}
            if more:
                out["paging"]["next"] = self._next_url(request, params, token, limit, offset + len(data))
        return out

    def _token_item(self, s: Subscriber, fields) -> dict:
        ne = self.state.next_eligible(s.token)
        full = {"notification_messages_token": s.token, "recipient_id": s.psid,
                "creation_timestamp": s.created_at,
                # tokens no longer expire (FAQ) but the listing still carries the field (TOK)
                "token_expiry_timestamp": s.token_expiry if s.token_expiry is not None else 0,
                "user_token_status": "REFRESHED",
                "notification_messages_reoptin": "ENABLED", "notification_messages_timezone": s.timezone,
                "topic_title": s.topic_title, "next_eligible_time": ne,
                "next_eligible_time_for_paid_messaging": ne, "id": s.token}
        return {k: full[k] for k in fields if full.get(k) is not None}


# Codes Meta answers at campaign creation rather than at send time (Meta's MM API reference error table).
_CREATION_CODES = frozenset({2300007, 2300011, 2300013, 2300019, 2300020, 2300030, 2300031, 2300064,
                             2300065, 2300066, 2300067, 2300069, 2300079})
# pacing / retry-later codes carry error_data.remaining_seconds (CL Mar 16 2026)
_REMAINING = {2300028: 3600, 2300055: 1800, 2300057: 300, 2300060: 300, 2300061: 1800, 2300062: 1800,
              2300063: 60, 2300068: 60, 2300078: 60, 2300079: 60, 2300080: 60}

# The listing's documented filters (Meta's get-subscription-tokens page, and some only Meta's SDK names):
# each is honoured or
# refused with an error naming it, never silently ignored.
_REFUSED_FILTERS = ("custom_audience_ids", "opt_in_source", "since", "until", "subscriber_tag_ids")


def _truthy(v: Any) -> bool:
    return v is True or str(v).strip().lower() in ("true", "1")


def _listing_filter(params: dict, state) -> Callable[[Subscriber], bool] | None:
    for name in _REFUSED_FILTERS:
        if params.get(name) not in (None, "", []):
            raise EmuError(100, f"(#100) The emulator does not model the filter {name}: it cannot tell "
                                "which tokens Meta would return, so it refuses rather than ignore it")
    dedupe = _truthy(params.get("do_not_return_duplicates"))
    received = params.get("has_received_marketing_message")
    if not dedupe and received in (None, ""):
        return None
    seen: set[tuple[str, str]] = set()

    def keep(s: Subscriber) -> bool:
        if received not in (None, "") and (s.token in state.last_sent) != _truthy(received):
            return False
        if dedupe and s.psid:   # one token per recipient: the first (oldest) one
            key = (s.page_id, s.psid)
            if key in seen:
                return False
            seen.add(key)
        return True
    return keep


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise EmuError(100, f"(#100) Unsupported {method.lower()} request.", subcode=33)


def _int(v: Any) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        raise EmuError(100, f"(#100) Expected an integer, got {str(v)[:40]!r}") from None


def _cursor(offset: int) -> str:
    import base64

    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _cursor_offset(after: Any) -> int:
    if after in (None, ""):
        return 0
    import base64

    s = str(after)
    try:
        raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode()
        if raw.startswith("o:"):
            return max(0, int(raw[2:]))
    except (ValueError, UnicodeDecodeError):
        pass
    raise EmuError(100, "(#100) Invalid cursor for parameter after")


def _fields(row: dict, fields: Any) -> dict:
    if not fields:
        return row
    wanted = [f.strip() for f in str(fields).split(",") if f.strip()]
    return {k: row[k] for k in wanted if k in row}


# ---------------------------------------------------------------------- /_emulator/ namespace
def _emulator_routes() -> list[Route]:
    def emu(request: Request) -> Emulator:
        return request.app.state.emulator

    async def sends(request: Request) -> Response:
        e = emu(request)
        q = request.query_params
        rows = e.state.sends
        if q.get("token"):
            rows = [s for s in rows if s.token == q["token"]]
        if q.get("message_id"):
            rows = [s for s in rows if s.message_id == q["message_id"]]
        offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10_000))
        from migrator.emulator.state import _send_json

        return _json({"count": len(rows), "data": [_send_json(s) for s in rows[offset:offset + limit]]})

    async def campaigns(request: Request) -> Response:
        e = emu(request)
        return _json({"data": [{**c.ads_row(), "ad_account_id": c.ad_account_id, "page_id": c.page_id,
                                "created_at": c.created_at, "spent": c.spent, "sends": c.sends}
                               for c in e.state.campaigns.values()]})

    async def state(request: Request) -> Response:
        e = emu(request)
        if e.webhooks:
            e.webhooks.flush()
        return _json({"now": e.clock(), "virtual_clock": e.virtual, "requests": e.requests,
                      "subscribers": len(e.state.subscribers), "campaigns": len(e.state.campaigns),
                      "sends": len(e.state.sends), "errors": {str(k): v for k, v in e.state.errors.items()},
                      "webhook_events": e.webhooks.events if e.webhooks else 0})

    async def reset(request: Request) -> Response:
        emu(request).state.reset()
        return _json({"success": True})

    async def flush(request: Request) -> Response:
        e = emu(request)
        if e.webhooks:
            e.webhooks.flush()
        e.save_snapshot()
        return _json({"success": True})

    async def clock(request: Request) -> Response:
        e = emu(request)
        if not e.virtual:
            return _json({"error": {"message": "the clock is the wall clock (start with a virtual clock)",
                                    "code": 100, "type": "EmulatorException"}}, 400)
        body = orjson.loads(await request.body() or b"{}")
        if "set" in body:
            e.clock.set(float(body["set"]))
        if "advance" in body:
            e.clock.advance(float(body["advance"]))
        return _json({"now": e.clock()})

    async def add_subscribers(request: Request) -> Response:
        e = emu(request)
        body = orjson.loads(await request.body() or b"[]")
        try:
            subs = [subscriber_from_dict(d) for d in (body if isinstance(body, list) else [body])]
        except ValueError as exc:
            return _json({"error": {"message": str(exc), "code": 100, "type": "EmulatorException"}}, 400)
        return _json({"added": e.state.add_subscribers(subs)})

    return [Route("/_emulator/sends", sends), Route("/_emulator/campaigns", campaigns),
            Route("/_emulator/state", state), Route("/_emulator/reset", reset, methods=["POST"]),
            Route("/_emulator/flush", flush, methods=["POST"]),
            Route("/_emulator/clock", clock, methods=["POST"]),
            Route("/_emulator/subscribers", add_subscribers, methods=["POST"])]


def default_validator(rules=None) -> Callable[[dict], list[tuple[int, str]]]:
    """The emulator's own acceptance checks (emulator/checks.py), not the converter's validator:
    written from Meta's documented limits and error texts, so the emulator can disagree with
    the converter. `rules`: the EmulatorRules in force."""
    er = rules or checks.EmulatorRules.packaged()

    def validate(message: dict) -> list[tuple[int, str]]:
        r = checks.check_message(message, er)
        return [] if r is None else [(r.code, r.message)]

    return validate


def create_app(config: EmulatorConfig | None = None, *, subscribers: list[Subscriber] | None = None,
               validator: Callable[[dict], list[tuple[int, str]]] | None | str = "default",
               assets: Assets | None = None) -> "_GraphASGI":
    """Build the emulator app; `app.state.emulator` is the `Emulator` (state, clock, close())."""
    config = config or EmulatorConfig()
    emulator = Emulator(config, default_validator(config.rules_view()) if validator == "default"
                        else validator, assets)
    if subscribers:
        emulator.state.add_subscribers(subscribers)
    emulator.replay_unhooked()
    logging.getLogger("uvicorn.error").addFilter(_DropEmulatedResets())

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        emulator.close()

    routes = Starlette(routes=_emulator_routes(), lifespan=lifespan)
    routes.state.emulator = emulator
    app = _GraphASGI(emulator, routes)
    return app


class _GraphASGI:
    """The ASGI entry: Graph calls go straight to `Emulator.handle` (the hot path, no framework
    overhead); `/_emulator/...` and lifespan go to the Starlette app."""

    def __init__(self, emulator: Emulator, routes: Starlette):
        self.emulator = emulator
        self.routes = routes
        self.state = routes.state  # `app.state.emulator`, as with a Starlette app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.routes(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] not in ("GET", "POST", "DELETE"):
            out = _Out(405, b'{"error":{"message":"method not allowed","code":100,"type":"OAuthException"}}')
        else:
            req = _Req(scope["method"], scope["path"], scope.get("query_string", b""), headers, body,
                       scope.get("scheme", "http"), headers.get("host", "localhost"))
            out = await self.emulator.handle(req)
        inprocess = headers.get(INPROCESS_HEADER) == "1"
        if out.fault == "timeout":
            if inprocess:
                raise EmulatedTimeout("emulated timeout")
            await asyncio.sleep(self.emulator.config.faults.timeout_seconds)
        raw_headers = [(b"content-type", out.content_type.encode()),
                       (b"content-length", str(len(out.body)).encode())]
        raw_headers += [(k.encode(), v.encode()) for k, v in out.headers.items()]
        if out.fault == "reset":
            if inprocess:
                raise EmulatedReset("emulated connection reset")
            # headers promising a longer body, half a body, then failure: uvicorn drops the socket
            raw_headers[1] = (b"content-length", str(len(out.body) + 4096).encode())
            await send({"type": "http.response.start", "status": out.status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": out.body[:8], "more_body": True})
            raise EmulatedReset("emulated connection reset")
        await send({"type": "http.response.start", "status": out.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": out.body})


__all__ = ["EmulatedReset", "EmulatedTimeout", "Emulator", "INPROCESS_HEADER", "VirtualClock",
           "create_app", "default_validator"]

"""Graph batch requests: up to 50 calls in one `POST /` (or `POST /vX.Y/`), answered call by call.

Partners' existing tools (Meta's `facebook-business` SDK `api.new_batch()`, and the Node/PHP
SDKs) send `batch=[{"method", "relative_url", "body"?, "name"?, "headers"?}, ...]` with one access
token for the whole request. Meta's documentation of batch requests
(https://developers.facebook.com/docs/graph-api/batch-requests) says, and this module emulates:

- at most 50 calls per batch; a larger batch is refused whole;
- every call is counted separately against rate limits, and is answered on its own: an array,
  in call order, of `{"code": <HTTP status>, "headers": [{"name", "value"}], "body": "<JSON text>"}`,
  so one call can fail while the others succeed;
- a call that did not complete (it timed out inside the batch) is `null`: the caller cannot tell
  whether it took effect;
- a call may carry its own `access_token` (in its body or query); otherwise the batch's is used;
- `include_headers=false` drops each call's headers.

Not emulated, and refused per call rather than ignored: JSONPath references between calls
(`{result=name:$.id}`), and `attached_files`. The exact wording Meta uses for an oversized batch
is not in our reference texts; the code (100) and the limit are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from migrator.emulator.state import EmuError

if TYPE_CHECKING:  # pragma: no cover
    from migrator.emulator.app import Emulator, _Out

MAX_CALLS = 50  # https://developers.facebook.com/docs/graph-api/batch-requests ("Limits")


def _calls(params: dict[str, Any]) -> list[Any]:
    raw = params.get("batch")
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise EmuError(100, "(#100) param batch must be a JSON-encoded array") from None
    if not isinstance(raw, list) or not raw:
        raise EmuError(100, "(#100) param batch must be a non-empty JSON-encoded array")
    if len(raw) > MAX_CALLS:
        raise EmuError(100, f"(#100) Too many requests in batch message. Maximum batch size is {MAX_CALLS}")
    return raw


def _refused(code: int, message: str) -> dict:
    body = {"error": {"message": message, "type": "OAuthException", "code": code}}
    return {"code": 400, "headers": [{"name": "Content-Type", "value": "application/json"}],
            "body": orjson.dumps(body).decode()}


async def answer_batch(emu: "Emulator", params: dict[str, Any], token: str, headers: dict) -> "_Out":
    """Run each call of the batch through the emulator's own handler and collect the answers."""
    from migrator.emulator.app import _Out, _Req

    calls = _calls(params)
    include_headers = str(params.get("include_headers", "true")).lower() != "false"
    answers: list[dict | None] = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("relative_url"), str) \
                or not isinstance(call.get("method", "GET"), str):
            answers.append(_refused(100, "(#100) Each batch call needs a method and a relative_url"))
            continue
        body = call.get("body") or ""
        if not isinstance(body, str):
            body = "&".join(f"{k}={v}" for k, v in body.items()) if isinstance(body, dict) else ""
        if "{result=" in call["relative_url"] or "{result=" in body:
            answers.append(_refused(100, "(#100) JSONPath references between batch calls are not "
                                         "supported by this emulator"))
            continue
        if call.get("attached_files"):
            answers.append(_refused(100, "(#100) attached_files are not supported by this emulator"))
            continue
        url = urlsplit("/" + call["relative_url"].lstrip("/"))
        method = call.get("method", "GET").upper()
        sub_headers = {"content-type": "application/x-www-form-urlencoded",
                       "authorization": f"Bearer {token}"}
        for h in call.get("headers") or []:
            if isinstance(h, dict) and isinstance(h.get("name"), str) and isinstance(h.get("value"), str):
                sub_headers[h["name"].lower()] = h["value"]
        if "access_token=" in url.query or "access_token=" in body:
            sub_headers.pop("authorization")  # the call's own token wins
        req = _Req(method, url.path, url.query.encode(), sub_headers, body.encode())
        out = await emu.handle(req, inner=True)
        if out.fault is not None:  # the call did not complete inside the batch
            answers.append(None)
            continue
        entry: dict[str, Any] = {"code": out.status, "body": out.body.decode("utf-8", "strict")}
        if include_headers:
            entry["headers"] = [{"name": "Content-Type", "value": out.content_type},
                                *({"name": k, "value": v} for k, v in out.headers.items())]
        answers.append(entry)
    return _Out(200, orjson.dumps(answers), headers)

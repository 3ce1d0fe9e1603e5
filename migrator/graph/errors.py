"""Every failure of a Graph call, as one exception hierarchy under `MigratorError`.

`GraphError` carries the parsed envelope (code, error_subcode, type, fbtrace_id, ...) and its
`Classification`; the subclass says what to do (one per handling class: retry, skip, drop, stop, fix,
set-up), so callers may
`except RecipientLater` or look at `err.error_class`. Network failures are `NetworkError`
(a `RetryLater`) with `.ambiguous` telling whether the request may have been processed.
Messages never contain the access token (the client scrubs them).
"""

from __future__ import annotations

from typing import Any

from migrator.errors import MigratorError
from migrator.graph.classify import Classification, ErrorClass, classify, classify_network


class GraphConfigError(MigratorError):
    """The client cannot be set up (no access token, bad base URL)."""


class GraphError(MigratorError):
    """A Graph call failed; see `.classification` for what to do and `.wait_seconds` for when."""

    error_class: ErrorClass = ErrorClass.STOP_CAMPAIGN

    def __init__(self, message: str, *, classification: Classification, code: int | None = None,
                 subcode: int | None = None, type: str | None = None, user_msg: str | None = None,
                 user_title: str | None = None, remaining_seconds: float | None = None,
                 is_transient: bool | None = None, fbtrace_id: str | None = None,
                 http_status: int | None = None, error_data: dict | None = None,
                 hint: str | None = None):
        label = f"Graph error {code}" + (f"/{subcode}" if subcode is not None else "") if code is not None \
            else "Graph request failed"
        super().__init__(f"{label}: {message} [{classification.error_class.value}]",
                         hint=hint or classification.meaning)
        self.graph_message = message
        self.classification = classification
        self.code = code
        self.subcode = subcode
        self.type = type
        self.user_msg = user_msg
        self.user_title = user_title
        self.remaining_seconds = remaining_seconds
        self.is_transient = is_transient
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.error_data = error_data or {}

    @property
    def wait_seconds(self) -> float | None:
        return self.classification.wait_seconds

    @property
    def mm_code(self) -> int | None:
        """The MM 23000xx code, wherever Meta put it."""
        for c in (self.subcode, self.code):
            if c is not None and 2300000 <= c <= 2399999:
                return c
        return None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "error_subcode": self.subcode, "message": self.graph_message,
                "type": self.type, "fbtrace_id": self.fbtrace_id, "http_status": self.http_status,
                "remaining_seconds": self.remaining_seconds, "is_transient": self.is_transient,
                **{f"classification_{k}": v for k, v in self.classification.to_json().items()}}


class RetryLater(GraphError):
    """Transient: the same call may succeed after `wait_seconds` (or backoff)."""

    error_class = ErrorClass.RETRY_LATER


class RecipientLater(GraphError):
    """This subscriber can't get a message now; reschedule only this recipient."""

    error_class = ErrorClass.RECIPIENT_LATER


class RecipientNever(GraphError):
    """This token is dead for MM (opted out, invalid, wrong region, expired, other Page)."""

    error_class = ErrorClass.RECIPIENT_NEVER


class StopCampaign(GraphError):
    """Nothing more can go out under this campaign (budget, state, campaign setup)."""

    error_class = ErrorClass.STOP_CAMPAIGN


class FixPayload(GraphError):
    """The request or message is wrong; retrying it unchanged will fail again."""

    error_class = ErrorClass.FIX_PAYLOAD


class AccountFatal(GraphError):
    """Stop everything for this business/Page/app until a person fixes the setup."""

    error_class = ErrorClass.ACCOUNT_FATAL


class NetworkError(RetryLater):
    """No Graph answer: connect failure, timeout, reset, 5xx without a body, unreadable body.

    `ambiguous` is True when the request may have reached Meta and been processed.
    """

    def __init__(self, message: str, *, kind: str, http_status: int | None = None):
        c = classify_network(kind)
        super().__init__(message, classification=c, http_status=http_status,
                         hint="check the network/base URL; the call can be retried"
                         + (" (a send may have gone out: settle it from receipts)" if c.ambiguous else ""))
        self.kind = kind

    @property
    def ambiguous(self) -> bool:
        return self.classification.ambiguous


_BY_CLASS: dict[ErrorClass, type[GraphError]] = {
    cls.error_class: cls for cls in (RetryLater, RecipientLater, RecipientNever, StopCampaign,
                                     FixPayload, AccountFatal)
}


def _as_int(v: Any) -> int | None:
    try:
        return int(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def _as_float(v: Any) -> float | None:
    try:
        return float(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def error_from_envelope(body: Any, *, http_status: int | None = None,
                        scrub: tuple[str, ...] = ()) -> GraphError | None:
    """Build the right GraphError from a Graph error body, or None if it is not an envelope."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    e = body["error"]
    from migrator.graph.secret import scrub as _scrub

    message = _scrub(str(e.get("message") or ""), *scrub) or ""
    code, subcode = _as_int(e.get("code")), _as_int(e.get("error_subcode"))
    data = e.get("error_data")
    if isinstance(data, str):  # Graph sometimes sends error_data as a JSON string
        import json

        try:
            data = json.loads(data)
        except ValueError:
            data = {}
    data = data if isinstance(data, dict) else {}
    remaining = _as_float(data.get("remaining_seconds"))
    transient = e.get("is_transient")
    transient = bool(transient) if transient is not None else None
    c = classify(code, subcode, message, remaining_seconds=remaining, is_transient=transient)
    cls = _BY_CLASS[c.error_class]
    return cls(message, classification=c, code=code, subcode=subcode, type=e.get("type"),
               user_msg=_scrub(e.get("error_user_msg"), *scrub), user_title=_scrub(e.get("error_user_title"), *scrub),
               remaining_seconds=remaining, is_transient=transient, fbtrace_id=e.get("fbtrace_id"),
               http_status=http_status, error_data=data)


__all__ = ["AccountFatal", "ErrorClass", "FixPayload", "GraphConfigError", "GraphError", "NetworkError",
           "RecipientLater", "RecipientNever", "RetryLater", "StopCampaign", "error_from_envelope"]

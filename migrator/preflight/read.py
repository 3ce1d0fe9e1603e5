"""The Graph reads preflight makes: read-only GETs on documented endpoints, nothing else.

Each read returns a `checks.Read` (the object, or why it could not be read); a refusal that says
the token may not see the object (Graph 10, 100/33, 190, 200-299, an MM account code) is `denied`,
a network failure or throttling is not (the check is then `unknown`, not `fail`).

Endpoints (the URLs are Meta's Graph / Marketing
API reference pages for the node):
- `GET /me/permissions` — https://developers.facebook.com/docs/graph-api/reference/user/permissions/
  (`{"data": [{"permission": "...", "status": "granted|declined|expired"}]}`). Chosen over
  `GET /debug_token?input_token=...` (https://developers.facebook.com/docs/graph-api/reference/debug_token/),
  which would put the access token itself in a URL.
- `GET /act_<AD_ACCOUNT_ID>?fields=...` — https://developers.facebook.com/docs/marketing-api/reference/ad-account/
  (fields account_status, disable_reason, currency, timezone_name, funding_source,
  funding_source_details, business, business_country_code).
- `GET /<PAGE_ID>?fields=...` — https://developers.facebook.com/docs/graph-api/reference/page/
  (fields name, business, location).
- `GET /me?fields=id,name` with a Page token — https://developers.facebook.com/docs/graph-api/reference/page/
  (a Page access token's `/me` is the Page: proves the token is that Page's).
"""

from __future__ import annotations

import re

from migrator.graph import ErrorClass, GraphError, NetworkError
from migrator.graph.client import act
from migrator.preflight.checks import Read

ACCOUNT_FIELDS = ("id,name,account_status,disable_reason,currency,timezone_name,funding_source,"
                  "funding_source_details,business{id,name},business_country_code")
PAGE_FIELDS = "id,name,business{id,name},location{country,country_code}"
ME_FIELDS = "id,name"


_NETWORK_WORDS = {
    "connect": "no connection to Graph",
    "timeout": "Graph did not answer in time",
    "reset": "the connection to Graph broke before an answer",
    "refused_locally": "the request was refused before it left this machine",
}


def in_words(err: GraphError) -> str:
    """What Meta (or the network) said, for a person: Meta's code and message, never our client's
    Python class or error class (`[fix_payload]`, `ConnectError:`)."""
    if isinstance(err, NetworkError):
        words = _NETWORK_WORDS.get(err.kind)
        text = (err.graph_message or "").strip()
        if words is None or text.startswith(words):   # an HTTP status without a body, or said already
            return text
        low = re.sub(r"^\w+: ", "", text)                          # the Python class, if any
        low = re.sub(r"\[Errno -?\d+\] ", "", low).strip()
        return f"{words}: {low}" if low else words
    msg = (err.graph_message or "").strip()
    if err.code is not None:
        msg = re.sub(rf"^\(#{err.code}\)\s*", "", msg)               # Meta repeats its code: once is enough
        code = f"Meta's error {err.code}" + (f" (subcode {err.subcode})" if err.subcode is not None else "")
        return f"{code}: {msg}" if msg else code
    return msg or "Graph answered without an error message"


def read(client, path: str, fields: str | None = None) -> Read:
    """One GET; the Graph error (already scrubbed of the token by the client) becomes the reason."""
    try:
        return Read(data=client.call("GET", path, params={"fields": fields} if fields else None))
    except NetworkError as err:
        return Read(error=in_words(err), unreachable=err.kind == "connect")
    except GraphError as err:
        denied = err.error_class is not ErrorClass.RETRY_LATER
        return Read(error=in_words(err), denied=denied)


def permissions(client) -> Read:
    return read(client, "me/permissions")


def ad_account(client, ad_account_id: str) -> Read:
    return read(client, act(ad_account_id), ACCOUNT_FIELDS)


def page(client, page_id: str) -> Read:
    return read(client, str(page_id), PAGE_FIELDS)


def me(client) -> Read:
    return read(client, "me", ME_FIELDS)

"""Graph API access: the client, its exception hierarchy, error classification and throttling.

Public surface:
- `GraphClient` / `AsyncGraphClient`: token listing, message_campaign create/read/delete/list,
  messages send, message_delivery_estimate; `load_access_token()` reads env or a token file.
- `errors`: `GraphError` and one subclass per class (RetryLater, RecipientLater, RecipientNever,
  StopCampaign, FixPayload, AccountFatal), `NetworkError`.
- `classify(code, subcode, message)` over the data table `error_codes.toml`; `table_rows()`.
- `parse_usage(headers)` -> `Usage(max_pct, regain_seconds)`; `RetryPolicy`.
"""

from migrator.graph.classify import Classification, ErrorClass, classify, classify_network, table_rows
from migrator.graph.client import (DEFAULT_BASE_URL, DEFAULT_VERSION, AsyncGraphClient, GraphClient,
                                   SendResult, TokenPage, act, load_access_token)
from migrator.graph.errors import (AccountFatal, FixPayload, GraphConfigError, GraphError, NetworkError,
                                   RecipientLater, RecipientNever, RetryLater, StopCampaign,
                                   error_from_envelope)
from migrator.graph.retry import NO_RETRY, RetryPolicy
from migrator.graph.usage import Usage, parse_usage

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_VERSION", "NO_RETRY", "AccountFatal", "AsyncGraphClient",
           "Classification", "ErrorClass", "FixPayload", "GraphClient", "GraphConfigError", "GraphError",
           "NetworkError", "RecipientLater", "RecipientNever", "RetryLater", "RetryPolicy", "SendResult",
           "StopCampaign", "TokenPage", "Usage", "act", "classify", "classify_network",
           "error_from_envelope", "load_access_token", "parse_usage", "table_rows"]

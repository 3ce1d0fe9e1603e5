"""Short, stable hashes for subscription tokens and PSIDs.

Reports and plans never carry a token or PSID whole; they carry `short_hash(value)`, which
is stable (the same token always gives the same hash) so a person can match rows across
files and look the token up in the workspace (`tokens.token_hash`).
"""

from __future__ import annotations

import hashlib

HASH_LEN = 12


def short_hash(value: str | None) -> str | None:
    """First 12 hex digits of SHA-256: enough to tell 10M tokens apart in practice."""
    if value is None:
        return None
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LEN]

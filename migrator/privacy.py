"""Short, stable hashes for subscription tokens and PSIDs.

Reports and plans never carry a token or PSID whole; they carry `short_hash(value)`, which
is stable (the same token always gives the same hash) so a person can match rows across
files and look the token up in the workspace (`tokens.token_hash`).
"""

from __future__ import annotations

import hashlib

HASH_LEN = 12

# CPython's own SHA-256 (3.12+: _sha2, 3.11: _sha256) gives the same digest as hashlib's
# OpenSSL one; for an input the size of a token, OpenSSL's per-call set-up and locking cost
# more than the hashing, so this one is ~20 % cheaper a call (an ingest hashes every token).
# A Python built without it uses hashlib's.
try:
    from _sha2 import sha256 as sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from _sha256 import sha256 as sha256  # type: ignore[import-not-found,no-redef]
    except ImportError:
        sha256 = hashlib.sha256  # type: ignore[assignment]


def short_hash(value: str | None) -> str | None:
    """First 12 hex digits of SHA-256: enough to tell 10M tokens apart in practice."""
    if value is None:
        return None
    return sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LEN]

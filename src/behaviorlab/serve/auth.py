"""Optional bearer-token auth: the token comes from BEHAVIORLAB_SERVE_TOKEN and is compared in constant time.

Neither the token nor the Authorization header is ever logged or echoed back.
"""

from __future__ import annotations

import hmac
import os

from behaviorlab.serve.config import TOKEN_ENV

OPEN_PATHS = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})  # answered without a token


def token_from_environment() -> bytes | None:
    """The configured token, or None (auth off) when the variable is unset or empty."""
    value = os.environ.get(TOKEN_ENV, "")
    return value.encode() if value else None


def authorized(header: str | None, token: bytes) -> bool:
    """Whether an Authorization header carries `Bearer <token>`; the comparison takes the same time for
    every wrong token of a given length (hmac.compare_digest)."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token)

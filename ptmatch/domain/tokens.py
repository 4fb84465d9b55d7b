"""Random link tokens (>= 128 bits) stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> tuple[str, str]:
    """Return (token for the link, hash for the database)."""
    token = secrets.token_urlsafe(24)  # 192 bits
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

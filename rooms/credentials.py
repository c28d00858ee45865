"""Secrets: passwords (argon2) and random bearer tokens (stored as SHA-256 only).

A token reads ``<kind>_<prefix>_<secret>``: ``kind`` says what it opens (``sms`` staff
session or API token, ``smk`` integration key, ``smr`` room terminal), ``prefix`` finds the
row, and only the SHA-256 of the whole token is stored. Tokens carry 256 bits of entropy,
so a fast hash is enough; passwords are low-entropy and get argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TokenKind = Literal["sms", "smk", "smr"]

_hasher = PasswordHasher()
# A hash to verify against when the account does not exist, so that timing does not tell.
_DUMMY_HASH = _hasher.hash("suimeet-dummy-password")


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly minted token: ``token`` is shown once; the rest is stored."""

    token: str
    prefix: str
    hash: str


def mint_token(kind: TokenKind) -> NewToken:
    prefix = secrets.token_hex(6)
    token = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewToken(token=token, prefix=prefix, hash=hash_token(token))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_token(token: str) -> tuple[TokenKind, str] | None:
    """The kind and prefix of a well-formed token, or None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or len(token) > 200:
        return None
    kind, prefix, secret = parts
    if kind not in ("sms", "smk", "smr") or len(prefix) != 12 or not secret:
        return None
    return kind, prefix  # type: ignore[return-value]


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, stored_hash: str | None) -> bool:
    """True if the password matches; spends the same time when there is no account."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False

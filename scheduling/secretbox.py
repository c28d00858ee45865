"""Secrets the server must read back (webhook signing secrets), sealed at rest.

For :mod:`scheduling.webhooks`. A webhook secret has to be recoverable, since the server
signs every delivery with it, so it cannot be hashed like an API key. It is stored
encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the server's secret:
a copy of the database alone does not reveal it. Rotating the server secret makes the
sealed secrets unreadable; deliveries then fail with ``secret_unreadable`` until an
administrator sets a new webhook secret.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"


class SecretUnreadable(Exception):
    """A sealed secret was not sealed with this server's secret (or was altered)."""


class SecretBox:
    """Seals and opens short secrets with a key derived from the server secret."""

    def __init__(self, server_secret: bytes, purpose: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"suimeet-secretbox",
            info=purpose.encode(),
        ).derive(server_secret)
        self._aead = AESGCM(key)
        self._purpose = purpose.encode()

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), self._purpose)
        return f"{_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str) -> str:
        version, _, data = sealed.partition(":")
        if version != _VERSION:
            raise SecretUnreadable("unknown sealing version")
        try:
            raw = base64.urlsafe_b64decode(data.encode())
            return self._aead.decrypt(raw[:12], raw[12:], self._purpose).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretUnreadable("sealed with another server secret, or altered") from exc

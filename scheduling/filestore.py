"""Where meeting materials' bytes live: a small interface and its data-directory store.

For :mod:`scheduling.materials`. The database keeps what a document is; a
:class:`FileStore` keeps its bytes under an opaque key the store chooses. Another store
(an object store, a network share) implements the same three methods.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Protocol


class FileStore(Protocol):
    """Bytes by key. ``put`` returns the key; ``get`` raises FileNotFoundError."""

    async def put(self, data: bytes, suffix: str) -> str: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


class LocalFileStore:
    """Files in one directory (``DATA_DIR/materials``), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not key or "/" in key or "\\" in key or key.startswith("."):
            raise FileNotFoundError(key)
        return self.root / key

    async def put(self, data: bytes, suffix: str) -> str:
        key = f"{secrets.token_hex(16)}.{suffix}"
        await asyncio.to_thread(self._write, self._path(key), data)
        return key

    def _write(self, path: Path, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(path.name + ".part")
        with open(temp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(path.unlink, True)

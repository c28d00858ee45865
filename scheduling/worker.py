"""A background loop that drains a durable queue: a pass now, then when woken or polled.

For the outgoing mail and the webhook outbox, whose rows are written inside the
transactions of the changes they describe and sent afterwards by this loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class DrainLoop:
    """Runs ``drain`` (one batch; returns how many rows it handled) until nothing is left,
    then waits for :meth:`wake` or ``poll_seconds``; whoever calls :meth:`start` owns it
    and must :meth:`close` it (idempotent)."""

    def __init__(self, name: str, drain: Callable[[], Awaitable[int]], poll_seconds: float) -> None:
        self.name = name
        self.drain = drain
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Drain now (call after committing new rows)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                while await self.drain():
                    pass
            except Exception:  # the loop must survive a database hiccup
                log.exception("%s pass failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()

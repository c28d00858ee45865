"""Wiring of the OA integration: webhooks and their outbox, idempotency keys, materials.

Builds the services from the settings, appends the change listeners (meeting changes
become webhook events in the same transaction; created meetings are bound to their
idempotency key), hooks terminal online/offline (:mod:`web.terminal_control`), declares
the REST endpoints, and runs the webhook sender and the purge of expired idempotency keys
in a cleanup context.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from scheduling.events import meeting_listener, publish_event
from scheduling.filestore import LocalFileStore
from scheduling.idempotency import IdempotencyStore
from scheduling.materials import Materials
from scheduling.secretbox import SecretBox
from scheduling.targets import AllowList
from scheduling.webhook_sender import SenderConfig, WebhookSender
from scheduling.webhooks import Webhooks
from web import idempotency, keys, materials_pages
from web.api import Api
from web.endpoints import materials as materials_endpoints
from web.endpoints import webhooks as webhooks_endpoints
from web.endpoints.system import API
from web.terminal_control import TERMINAL_EVENTS, TerminalEvent, TerminalEventHook

log = logging.getLogger(__name__)
PURGE_EVERY = 3600.0


def install(app: web.Application) -> None:
    """Build the services, add the listeners, routes, middleware and workers."""
    settings, db = app[keys.SETTINGS], app[keys.DATABASE]
    box = SecretBox(app[keys.SECRET], "webhook-secrets")
    targets = AllowList.parse(settings.webhook_allowed_targets)
    app[keys.WEBHOOKS] = Webhooks(db, box, targets)
    sender = WebhookSender(
        db, box, targets,
        SenderConfig(timeout=settings.webhook_timeout_seconds,
                     retry_base=settings.webhook_retry_seconds),
    )  # fmt: skip
    app[keys.WEBHOOK_SENDER] = sender
    app[keys.MATERIALS] = Materials(
        db, LocalFileStore(settings.data_dir / "materials"),
        max_bytes=settings.material_max_bytes,
        link_hosts=AllowList.parse(settings.material_link_hosts),
    )  # fmt: skip
    app[keys.IDEMPOTENCY] = IdempotencyStore(db, timedelta(hours=settings.idempotency_hours))
    app[keys.MEETING_LISTENERS].append(meeting_listener(on_commit=sender.wake))

    main_api = app[API]
    api = Api(title="", version="")  # installed here, documented with the app's API
    webhooks_endpoints.register(api)
    materials_endpoints.register(api)
    api.install(app)
    main_api.endpoints.extend(api.endpoints)
    idempotency.install(app, main_api)
    materials_pages.install(app)
    if TERMINAL_EVENTS in app:  # installed by web.terminals
        app[TERMINAL_EVENTS].append(terminal_hook(app))
    app.cleanup_ctx.append(_workers)


def terminal_hook(app: web.Application) -> TerminalEventHook:
    """Terminal online/offline as ``terminal.online`` / ``terminal.offline`` events."""

    async def publish(event: TerminalEvent) -> None:
        await publish_event(
            app[keys.DATABASE], f"terminal.{event.kind}", None,
            {"terminal_id": event.terminal_id, "room_id": event.room_id,
             "at": event.at.isoformat(), "agent_version": event.agent_version},
            stream=f"terminal:{event.terminal_id}", on_commit=app[keys.WEBHOOK_SENDER].wake,
        )  # fmt: skip

    return publish


async def _purge(store: IdempotencyStore) -> None:
    while True:
        try:
            await store.purge_expired()
        except Exception:  # retried at the next round
            log.exception("purging expired idempotency keys failed")
        await asyncio.sleep(PURGE_EVERY)


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """The webhook sender and the purge of expired idempotency keys."""
    sender = app[keys.WEBHOOK_SENDER]
    sender.start()
    purge = asyncio.create_task(_purge(app[keys.IDEMPOTENCY]), name="idempotency-purge")
    try:
        yield
    finally:
        purge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purge
        await sender.close()

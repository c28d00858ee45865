"""The application factory: the composition root that wires every package together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from prometheus_client import CollectorRegistry

from rooms.accounts import Accounts
from rooms.db import Database
from rooms.directory import Directory
from scheduling.availability import Availability
from scheduling.changes import ChangeListener
from scheduling.meetings import MeetingService
from web import (
    admin_pages,
    conference,
    integration,
    invitations,
    keys,
    pages,
    records_pages,
    terminals,
)
from web.api import Api
from web.auth import LoginLimiter
from web.endpoints import accounts as accounts_endpoints
from web.endpoints import conference_records, system
from web.endpoints import conferences as conferences_endpoints
from web.endpoints import directory as directory_endpoints
from web.endpoints import guests as guests_endpoints
from web.endpoints import meetings as meetings_endpoints
from web.endpoints import stats as stats_endpoints
from web.metrics import Metrics, metrics_middleware
from web.problems import problems_middleware
from web.settings import Settings

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
VERSION = "0.1.0"


def build_api() -> Api:
    """Every REST endpoint, declared once."""
    api = Api(title="SuiMeet API", version=VERSION)
    accounts_endpoints.register(api)
    directory_endpoints.register(api)
    conferences_endpoints.register(api)
    guests_endpoints.register(api)
    meetings_endpoints.register(api)
    conference_records.register(api)
    stats_endpoints.register(api)
    return api


def create_app(settings: Settings) -> web.Application:
    """A SuiMeet web application for these settings (the database must be migrated)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[metrics_middleware, problems_middleware],
    )
    app[keys.SETTINGS] = settings
    app[keys.SECRET] = settings.secret()
    registry = CollectorRegistry()
    app[keys.REGISTRY] = registry
    app[keys.METRICS] = Metrics.create(registry)
    app[keys.LOGIN_LIMITER] = LoginLimiter(per_minute=settings.login_attempts_per_minute)
    api = build_api()
    app[system.API] = api

    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    db = Database(settings.effective_database_url)
    app[keys.DATABASE] = db
    app[keys.DIRECTORY] = Directory(db)
    app[keys.ACCOUNTS] = Accounts(db)
    listeners: list[ChangeListener] = []
    app[keys.MEETING_LISTENERS] = listeners
    app[keys.MEETINGS] = MeetingService(db, listeners)
    app[keys.AVAILABILITY] = Availability(db)
    app.cleanup_ctx.append(_database)
    api.install(app)
    system.install(app)
    pages.install(app)
    conference.install(app)
    admin_pages.install(app)
    invitations.install(app)
    terminals.install(app)
    integration.install(app)
    records_pages.install(app)
    app.router.add_static("/static", HERE / "static")
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    """The engine connects lazily; its pool is closed when the app stops."""
    yield
    await app[keys.DATABASE].close()

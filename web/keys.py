"""Typed application state: every resource the app holds, declared in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from rooms.accounts import Accounts
    from rooms.db import Database
    from rooms.directory import Directory
    from web.auth import LoginLimiter
    from web.metrics import Metrics
    from web.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DATABASE: web.AppKey[Database] = web.AppKey("database")
DIRECTORY: web.AppKey[Directory] = web.AppKey("directory")
ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts")
LOGIN_LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry")
SECRET: web.AppKey[bytes] = web.AppKey("secret")

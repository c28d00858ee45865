"""Operational endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web import keys
from web.api import Api
from web.auth import ADMIN_ONLY, Access, authorize
from web.problems import problem

METRICS_READ = Access(roles=ADMIN_ONLY.roles, scope="metrics:read")

log = logging.getLogger(__name__)

API: web.AppKey[Api] = web.AppKey("api")

_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SuiMeet API</title>
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>"""

_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#ui",
  deepLinking: true});"""


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers."""
    try:
        await request.app[keys.DATABASE].ping()
    except Exception as exc:  # any failure means "not ready"
        log.warning("database not reachable: %s", type(exc).__name__)
        return problem(503, "not_ready", "the database is not reachable")
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format, for administrators or a key with ``metrics:read``."""
    await authorize(request, METRICS_READ)
    body = generate_latest(request.app[keys.REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    spec = request.app[API].openapi(request.app[keys.SETTINGS].base_url)
    return web.Response(text=json.dumps(spec, ensure_ascii=False), content_type="application/json")


async def docs(_request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_PAGE, content_type="text/html")


async def docs_init(_request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_INIT, content_type="application/javascript")


def install(app: web.Application) -> None:
    """Add the operational routes (health and the API description are public)."""
    import swagger_ui_bundle

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/api/docs", docs)
    app.router.add_get("/api/docs/init.js", docs_init)
    app.router.add_static("/api/docs/static", Path(swagger_ui_bundle.swagger_ui_path))

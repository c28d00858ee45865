"""Health, readiness, metrics, the OpenAPI document and its docs page."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from rooms.models import Role
from tests.conftest import Staff


async def test_health_and_readiness(client: TestClient[Any, Any]) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    assert (await (await client.get("/readyz")).json()) == {"status": "ready"}


async def test_readiness_fails_when_the_database_is_gone(
    app: Any, client: TestClient[Any, Any]
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from web import keys

    db = app[keys.DATABASE]
    healthy = db.engine
    # the database server goes away: connections to it are refused from now on
    db.engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:9/none")
    try:
        assert (await client.get("/healthz")).status == 200
        response = await client.get("/readyz")
        assert response.status == 503 and (await response.json())["error"] == "not_ready"
    finally:
        await db.engine.dispose()
        db.engine = healthy
    assert (await client.get("/readyz")).status == 200


async def test_metrics_in_prometheus_format(client: TestClient[Any, Any], staff: Staff) -> None:
    h = await staff.headers(Role.ADMIN)
    await client.get("/api/v1/units", headers=h)
    response = await client.get("/metrics", headers=h)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'suimeet_http_requests_total{method="GET",route="/api/v1/units",status="200"}' in text
    assert "suimeet_http_request_seconds_bucket" in text


async def test_openapi_is_valid_3_1_and_covers_every_api_route(
    client: TestClient[Any, Any], app: Any
) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None
        and r.resource.canonical.startswith("/api/v1/")
        and r.resource.canonical != "/api/v1/openapi.json"
        and r.method != "HEAD"
    }
    assert served == documented
    create_room = spec["paths"]["/api/v1/rooms"]["post"]
    schema_ref = create_room["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    room_in = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert room_in["additionalProperties"] is False
    assert room_in["properties"]["name"]["maxLength"] == 200
    assert {"401", "403", "409", "422"} <= set(create_room["responses"])


async def test_docs_page_is_served_from_this_machine(client: TestClient[Any, Any]) -> None:
    page = await (await client.get("/api/docs")).text()
    assert "/api/docs/static/swagger-ui-bundle.js" in page and "http" not in page.split("<body>")[1]
    asset = await client.get("/api/docs/static/swagger-ui-bundle.js")
    assert asset.status == 200

"""Typed REST endpoints: one declaration gives routing, auth, validation and OpenAPI.

An endpoint is declared with its access policy and its pydantic models (path, query, body,
response); the wrapper authenticates, authorises, parses and validates the request, calls
the handler with a :class:`Call`, and serialises what it returns. The OpenAPI 3.1 document
is generated from the same declarations and models, so it cannot drift from the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema

from web.auth import Access, Principal, authorize
from web.problems import ApiError

B = TypeVar("B")
Q = TypeVar("Q")

MAX_ID = 2**63 - 1
_PATH_PARAM = re.compile(r"\{(\w+)\}")


class Schema(BaseModel):
    """Base of request and response schemas: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OutSchema(BaseModel):
    """Base of response schemas, built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """Every error answer."""

    error: str
    message: str
    fields: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Call(Generic[B, Q]):
    """One validated request, as handlers see it."""

    request: web.Request
    who: Principal
    body: B
    query: Q
    path: dict[str, int]

    @property
    def app(self) -> web.Application:
        return self.request.app


Handler = Callable[[Call[Any, Any]], Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    access: Access
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    errors: tuple[int, ...]
    description: str = ""
    body_example: dict[str, Any] | None = None
    # further OpenAPI parameter objects (e.g. a header), added by wrappers of the route
    parameters: list[dict[str, Any]] = field(default_factory=list)
    # an OpenAPI requestBody for a route that parses its own body (multipart uploads)
    request_body: dict[str, Any] | None = None
    # path parameters that are text (handed over in ``request.match_info``), not ids
    text_params: tuple[str, ...] = ()
    # a smaller body limit than the app's, for public endpoints (413 above it)
    max_body: int | None = None
    # the media type of a file answer (a download), for the OpenAPI document
    produces: str | None = None


@dataclass
class Api:
    """The registry of REST endpoints under one prefix."""

    title: str
    version: str
    prefix: str = "/api/v1"
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        access: Access,
        tag: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        errors: Sequence[int] = (),
        body_example: dict[str, Any] | None = None,
        text_params: Sequence[str] = (),
        max_body: int | None = None,
        produces: str | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method.upper(),
                    path=self.prefix + path,
                    handler=handler,
                    summary=summary,
                    access=access,
                    tag=tag,
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    errors=tuple(errors),
                    description=(handler.__doc__ or "").strip(),
                    body_example=body_example,
                    text_params=tuple(text_params),
                    max_body=max_body,
                    produces=produces,
                )
            )
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _wrap(endpoint))

    def openapi(self, base_url: str = "") -> dict[str, Any]:
        return build_openapi(self, base_url)


def _wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    response_adapter = TypeAdapter(endpoint.response) if endpoint.response is not None else None

    async def handle(request: web.Request) -> web.StreamResponse:
        who = await authorize(request, endpoint.access)
        path = {
            name: _parse_id(name, value)
            for name, value in request.match_info.items()
            if name not in endpoint.text_params
        }
        query = _parse_query(request, endpoint.query)
        body = await _parse_body(request, endpoint.body, endpoint.max_body)
        result = await endpoint.handler(Call(request, who, body, query, path))
        if isinstance(result, web.StreamResponse):
            return result
        if result is None or endpoint.status == 204:
            return web.Response(status=204)
        assert response_adapter is not None, f"{endpoint.path} returned data but declares none"
        payload = response_adapter.dump_json(result, by_alias=True)
        return web.Response(body=payload, status=endpoint.status, content_type="application/json")

    handle.__name__ = getattr(endpoint.handler, "__name__", "handle")
    return handle


def _parse_id(name: str, value: str) -> int:
    if not value.isdigit() or int(value) > MAX_ID or int(value) < 1:
        raise ApiError(
            400, "bad_id", f"{name} must be a positive integer", fields={name: "not a valid id"}
        )
    return int(value)


def _parse_query(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    if model is None:
        if request.query:
            unknown = ", ".join(sorted(request.query))
            raise ApiError(
                400,
                "unknown_parameter",
                f"unknown query parameters: {unknown}",
                fields={k: "unknown parameter" for k in request.query},
            )
        return None
    raw: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        annotation = model.model_fields.get(key)
        is_list = annotation is not None and "list" in str(annotation.annotation)
        raw[key] = values if is_list else values[-1]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _validation_problem(exc, "query") from None


async def _parse_body(
    request: web.Request, model: type[BaseModel] | None, limit: int | None = None
) -> BaseModel | None:
    if model is None:
        return None
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    if limit is not None and (request.content_length or 0) > limit:
        raise _too_large(limit)
    if limit is not None and len(await request.read()) > limit:  # sent without a length
        raise _too_large(limit)
    text = await request.text()
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_problem(exc, "body") from None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body is larger than {limit} bytes")


def _validation_problem(exc: ValidationError, where: str) -> ApiError:
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or where
        fields[loc] = err["msg"]
    return ApiError(422, "validation_failed", f"the {where} is not valid", fields=fields)


# --- OpenAPI -------------------------------------------------------------------------------

_STATUS_TEXT = {
    400: "Malformed request (bad JSON, bad id, unknown parameter)",
    401: "Not authenticated",
    403: "Not allowed for this caller",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Validation failed",
    429: "Too many requests",
}


def build_openapi(api: Api, base_url: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {Problem}
    for ep in api.endpoints:
        if ep.body is not None:
            models.add(ep.body)
        models.update(_models_in(ep.response))
    modes: tuple[Literal["validation"], Literal["serialization"]] = ("validation", "serialization")
    keyed = sorted(
        [(m, mode) for m in models for mode in modes],
        key=lambda t: (t[0].__name__, t[1]),
    )
    names: dict[str, type[BaseModel]] = {}
    for model in models:
        other = names.setdefault(model.__name__, model)
        if other is not model:
            raise ValueError(f"two schemas are named {model.__name__}: {other} and {model}")
    refs, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for ep in api.endpoints:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": getattr(ep.handler, "__name__", ep.summary),
            "tags": [ep.tag],
            "description": (ep.description + "\n\n" if ep.description else "")
            + f"Access: {ep.access.describe()}.",
        }
        if not ep.access.public:
            op["security"] = [{"bearer": []}, {"session": []}]
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": (
                    {"type": "string", "maxLength": 200}
                    if name in ep.text_params
                    else {"type": "integer", "minimum": 1}
                ),
            }
            for name in _PATH_PARAM.findall(ep.path)
        ]
        if ep.query is not None:
            qschema = ep.query.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, prop in qschema.get("properties", {}).items():
                params.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in qschema.get("required", []),
                        "schema": prop,
                        **({"description": prop["description"]} if "description" in prop else {}),
                    }
                )
        params.extend(ep.parameters)
        if params:
            op["parameters"] = params
        if ep.body is not None:
            content: dict[str, Any] = {"schema": refs[(ep.body, "validation")]}
            if ep.body_example is not None:
                content["example"] = ep.body_example
            op["requestBody"] = {"required": True, "content": {"application/json": content}}
        elif ep.request_body is not None:
            op["requestBody"] = ep.request_body
        responses: dict[str, Any] = {}
        if ep.produces is not None:
            responses[str(ep.status)] = {
                "description": "The file",
                "content": {ep.produces: {"schema": {"type": "string", "format": "binary"}}},
            }
        elif ep.status == 204 or ep.response is None:
            responses[str(ep.status if ep.status != 200 else 204)] = {"description": "Done"}
        else:
            responses[str(ep.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": _response_schema(ep.response, refs)}},
            }
        statuses = set(ep.errors) | {422} if (ep.body or ep.query) else set(ep.errors)
        if ep.body is not None:
            statuses |= {400, 413, 415}
        if _PATH_PARAM.search(ep.path):
            statuses |= {400, 404}
        if not ep.access.public:
            statuses |= {401, 403}
        for status in sorted(statuses):
            responses[str(status)] = {
                "description": _STATUS_TEXT.get(status, "Error"),
                "content": {
                    "application/problem+json": {"schema": refs[(Problem, "serialization")]}
                },
            }
        op["responses"] = responses
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": api.title, "version": api.version},
        "servers": [{"url": base_url or "/"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Staff API token (sms_…), integration key (smk_…) "
                    "or terminal token (smr_…).",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": "suimeet_session"},
            },
        },
    }


def _models_in(annotation: Any) -> set[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation}
    found: set[type[BaseModel]] = set()
    for arg in getattr(annotation, "__args__", ()):
        found |= _models_in(arg)
    return found


def _response_schema(annotation: Any, refs: dict[Any, Any]) -> dict[str, Any]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict(refs[(annotation, "serialization")])
    schema = TypeAdapter(annotation).json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    schema.pop("$defs", None)
    return schema

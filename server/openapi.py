"""Declared operations: one decorator validates body/query with pydantic models and records what the
OpenAPI 3.1 document says about the operation, so the two cannot drift apart."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
REF = "#/components/schemas/{model}"
STATUS_TEXT = {
    400: "Invalid parameter (1001)", 401: "Authorization failed (1003, 10031, 10032, 10033)",
    403: "Forbidden: missing scope (1004)", 404: "Not found (1002)", 409: "Conflict (1005)",
    412: "Precondition failed: stale If-Match (1009)", 413: "Body too large (1007)",
    415: "Unsupported media type (1007)", 429: "Too many requests (1006)", 503: "Service unavailable (1008)",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error_code", "message", "request"],
    "properties": {
        "error_code": {"type": "integer"},
        "message": {"type": "string"},
        "request": {"type": "string", "description": "METHOD /path"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "message"], "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}},
        "trace": {"type": "string", "description": "only when debug is on"},
    },
}
PAGE_SCHEMA = {"type": "object", "required": ["limit", "offset", "total"], "properties": {
    "limit": {"type": "integer"}, "offset": {"type": "integer"}, "total": {"type": "integer"}}}


@dataclass(frozen=True)
class Operation:
    """What a handler method declares about itself."""

    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    paginated: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def operation(*, summary: str, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              response: Any = None, status: int = 200, errors: Iterable[int] = (), paginated: bool = False,
              headers: dict[str, str] | None = None) -> Callable[[F], F]:
    """Declare an operation: body/query models are validated and passed as `body=` / `query=`."""
    op = Operation(summary, body, query, response, status, tuple(errors), paginated, headers or {})

    def decorator(method: F) -> F:
        @functools.wraps(method)
        async def wrapper(handler: Any, *args: Any, **kwargs: Any) -> Any:
            if body is not None:
                kwargs["body"] = handler.parse_body(body)
            if query is not None:
                kwargs["query"] = handler.parse_query(query)
            return await method(handler, *args, **kwargs)

        wrapper.operation = op  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


class _Schemas:
    """Collects component schemas while operations are described."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": ERROR_SCHEMA, "Page": PAGE_SCHEMA}

    def of(self, tp: Any, mode: str) -> dict[str, Any]:
        if tp is None:
            return {"type": "null"}
        schema = TypeAdapter(tp).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        self.components.update(schema.pop("$defs", {}))
        name = getattr(tp, "__name__", None)
        if name and schema.get("type") == "object" and "properties" in schema:
            self.components[name] = schema
            return {"$ref": REF.format(model=name)}
        return schema


def _parameters(path: str, query: type[BaseModel] | None, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
        for name in re.findall(r"\{(\w+)\}", path)]
    if query is not None:
        schema = TypeAdapter(query).json_schema(ref_template=REF)
        schemas.components.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def _error(status: int) -> dict[str, Any]:
    return {"description": STATUS_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}


def describe(path: str, method: str, fn: Any, schemas: _Schemas, tag: str) -> dict[str, Any]:
    """The OpenAPI operation object of one handler method."""
    op: Operation = getattr(fn, "operation", None) or Operation(summary=fn.__doc__ or method.upper())
    scopes = sorted(getattr(fn, "required_scopes", ()))
    secured = hasattr(fn, "required_scopes")
    envelope: dict[str, Any] = {
        "type": "object", "required": ["code", "data", "message"],
        "properties": {"code": {"type": "integer", "const": op.status},
                       "data": schemas.of(op.response, "serialization"),
                       "message": {"type": "string", "const": "ok"}}}
    if op.paginated:
        envelope["required"].append("page")
        envelope["properties"]["page"] = {"$ref": REF.format(model="Page")}
    success: dict[str, Any] = {"description": op.summary, "content": {"application/json": {"schema": envelope}}}
    if op.headers:
        success["headers"] = {k: {"description": v, "schema": {"type": "string"}} for k, v in op.headers.items()}
    statuses = set(op.errors) | {503}
    if op.body is not None or op.query is not None:
        statuses.add(400)
    if op.body is not None:
        statuses |= {413, 415}
    if secured:
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    out: dict[str, Any] = {
        "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
        "summary": op.summary,
        "tags": [tag],
        "parameters": _parameters(path, op.query, schemas),
        "responses": {str(op.status): success, **{str(s): _error(s) for s in sorted(statuses)}},
    }
    if op.body is not None:
        body_schema = schemas.of(op.body, "validation")
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
    if secured:
        out["security"] = [{"bearerAuth": scopes}]
        out["x-required-scopes"] = scopes
    return out


def build_document(routes: Iterable[tuple[str, str, Any, str]], *, title: str = "pet-api",
                   version: str = "1.0.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the mounted routes: (path, method, function, plugin) tuples."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for path, method, fn, plugin in routes:
        paths.setdefault(path, {})[method] = describe(path, method, fn, schemas, plugin)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "The JSON API behind the pet app. Every success is {code, data, message}; "
                                "every error is {error_code, message, request}."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas.components,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                          "description": "POST /v1/tokens gives the token"}}},
    }

"""Declared operations: one decorator validates body/query with pydantic models and records what the
OpenAPI 3.1 document says about the operation, so the two cannot drift apart."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
REF = "#/components/schemas/{model}"
MAX_ID = 2**63 - 1
JSON = "application/json"
# status -> (description, the error codes it can carry)
ERRORS: dict[int, tuple[str, tuple[int, ...]]] = {
    400: ("Invalid parameter: `errors` lists every failing field", (1001,)),
    401: ("Authorization failed: missing, malformed, invalid, expired or revoked token", (1003, 10031, 10032, 10033)),
    403: ("Forbidden: the token lacks a required scope", (1004,)),
    404: ("Not found (also another user's resource); 1007 when the path matches no route", (1002, 1007)),
    409: ("Conflict", (1005,)),
    412: ("Precondition failed: If-Match is not the current ETag; nothing was written", (1009,)),
    413: ("Request body too large", (1007,)),
    415: ("Unsupported media type: send application/json", (1007,)),
    429: ("Too many requests: see Retry-After", (1006,)),
    503: ("Service unavailable (database unreachable): see Retry-After", (1008,)),
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error_code", "message", "request"],
    "properties": {
        "error_code": {"type": "integer", "description": "see GET /v1/errors"},
        "message": {"type": "string", "description": "English, or Chinese with Accept-Language: zh"},
        "request": {"type": "string", "description": "METHOD /path", "examples": ["GET /v1/pets/7"]},
        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "message"], "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}},
        "trace": {"type": "string", "description": "only when debug is on"},
    },
}
PAGE_SCHEMA = {"type": "object", "required": ["limit", "offset", "total"], "properties": {
    "limit": {"type": "integer"}, "offset": {"type": "integer"},
    "total": {"type": "integer", "description": "rows matching the filters, ignoring limit and offset"}}}
# Any value is accepted: one that names no current version (a stale tag, or not a tag at all) is 412.
# Weak tags (W/"v3") count too, since a proxy that compresses responses may weaken the ETag it passes on.
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": 'ETag of the version you last read (e.g. "v3", or a list "v3", "v4"): the write '
                           "happens only if one of them is still current, else 412 and nothing is written. "
                           '"*" or no If-Match: the write always applies.'}


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
    conditional: bool = False
    media_type: str | None = None  # a raw (not enveloped) response: its media type
    schema: dict[str, Any] | None = None  # ... and its schema


def operation(*, summary: str, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              response: Any = None, status: int = 200, errors: Iterable[int] = (), paginated: bool = False,
              headers: dict[str, str] | None = None, conditional: bool = False, media_type: str | None = None,
              schema: dict[str, Any] | None = None) -> Callable[[F], F]:
    """Declare an operation: body/query models are validated and passed as `body=` / `query=`.

    headers: response headers always sent (name -> description); conditional: honours If-Match (412);
    media_type/schema: the response is that document itself instead of the JSON envelope."""
    op = Operation(summary, body, query, response, status, tuple(errors), paginated, headers or {}, conditional,
                   media_type, schema)

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


def _drop_null_defaults(schema: Any) -> Any:
    """pydantic writes "default": null for optional fields; in the document absent already means that."""
    if isinstance(schema, dict):
        return {k: _drop_null_defaults(v) for k, v in schema.items() if not (k == "default" and v is None)}
    if isinstance(schema, list):
        return [_drop_null_defaults(v) for v in schema]
    return schema


class _Schemas:
    """Collects component schemas while operations are described."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": ERROR_SCHEMA, "Page": PAGE_SCHEMA}

    def of(self, tp: Any, mode: str) -> dict[str, Any]:
        if tp is None:
            return {"type": "null"}
        schema = _drop_null_defaults(TypeAdapter(tp).json_schema(ref_template=REF, mode=mode))  # type: ignore[arg-type]
        self.components.update(schema.pop("$defs", {}))
        name = getattr(tp, "__name__", None)
        if name and schema.get("type") == "object" and "properties" in schema:
            self.components[name] = schema
            return {"$ref": REF.format(model=name)}
        return schema

    def error(self, status: int) -> dict[str, Any]:
        description, codes = ERRORS.get(status, ("Error", ()))
        name = f"Error{status}"
        self.components[name] = {"allOf": [{"$ref": REF.format(model="Error")},
                                           {"properties": {"error_code": {"enum": list(codes)}}}]}
        return {"description": description, "content": {JSON: {"schema": {"$ref": REF.format(model=name)}}}}


def _query_parameter(name: str, prop: dict[str, Any], required: bool) -> dict[str, Any]:
    # An optional query parameter is absent, never null: keep only the non-null branch.
    options = [s for s in prop.get("anyOf", []) if s != {"type": "null"}]
    if len(options) == 1:
        prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **options[0]}
    prop = {k: v for k, v in prop.items() if k != "title"}
    description = prop.pop("description", None)
    param = {"name": name, "in": "query", "required": required, "schema": prop}
    return {**param, "description": description} if description else param


def _parameters(path: str, op: Operation, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}
        for name in re.findall(r"\{(\w+)\}", path)]
    if op.query is not None:
        schema = _drop_null_defaults(TypeAdapter(op.query).json_schema(ref_template=REF))
        schemas.components.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        params += [_query_parameter(name, prop, name in required) for name, prop in schema["properties"].items()]
    if op.conditional:
        params.append(IF_MATCH)
    return params


def _success(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    if op.media_type is not None:
        content = {op.media_type: {"schema": op.schema or {"type": "string"}}}
    else:
        envelope: dict[str, Any] = {
            "type": "object", "required": ["code", "data", "message"],
            "properties": {"code": {"type": "integer", "const": op.status},
                           "data": schemas.of(op.response, "serialization"),
                           "message": {"type": "string", "const": "ok"}}}
        if op.paginated:
            envelope["required"].append("page")
            envelope["properties"]["page"] = {"$ref": REF.format(model="Page")}
        content = {JSON: {"schema": envelope}}
    success: dict[str, Any] = {"description": op.summary, "content": content}
    if op.headers:
        success["headers"] = {name: {"description": text, "required": True, "schema": {"type": "string"}}
                              for name, text in op.headers.items()}
    return success


def describe(path: str, method: str, fn: Any, schemas: _Schemas, tag: str) -> dict[str, Any]:
    """The OpenAPI operation object of one handler method."""
    op: Operation = getattr(fn, "operation", None) or Operation(summary=fn.__doc__ or method.upper())
    scopes = sorted(getattr(fn, "required_scopes", ()))
    secured = hasattr(fn, "required_scopes")
    statuses = set(op.errors)
    if op.media_type is None:
        statuses.add(503)  # JSON operations may need the database
    if op.body is not None or op.query is not None:
        statuses.add(400)
    if op.body is not None:
        statuses |= {413, 415}
    if op.conditional:
        statuses.add(412)
    if secured:
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    out: dict[str, Any] = {
        "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
        "summary": op.summary,
        "tags": [tag],
        "parameters": _parameters(path, op, schemas),
        "responses": {str(op.status): _success(op, schemas), **{str(s): schemas.error(s) for s in sorted(statuses)}},
    }
    if secured:
        out["description"] = ("Requires a bearer token with scope " + ", ".join(f"`{s}`" for s in scopes) + "."
                              if scopes else "Requires a bearer token (any scope).")
    if op.body is not None:
        body_schema = schemas.of(op.body, "validation")
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": body_schema}}}
    if secured:
        out["security"] = [{"bearerAuth": scopes}]
        out["x-required-scopes"] = scopes
    return out


def _add_links(paths: dict[str, dict[str, Any]]) -> None:
    """A 201 that creates `P/{x}` links to the operations on `P/{x}` and the paths under it that need no
    other parameter (OpenAPI links: clients and schemathesis' stateful phase follow them)."""
    for path, methods in paths.items():
        for op in methods.values():
            created = op["responses"].get("201")
            if created is None or "content" not in created:
                continue
            for target_path, target_methods in paths.items():
                match = re.fullmatch(re.escape(path) + r"/\{(\w+)\}(?:/[^{}]*)?", target_path)
                if match is None:
                    continue
                for target in target_methods.values():
                    params = {name: f"$request.path.{name}" for name in re.findall(r"\{(\w+)\}", path)}
                    params[match.group(1)] = "$response.body#/data/id"
                    if "ETag" in created.get("headers", {}) and any(p["name"] == "If-Match"
                                                                    for p in target["parameters"]):
                        params["header.If-Match"] = "$response.header.ETag"
                    created.setdefault("links", {})[target["operationId"]] = {
                        "operationId": target["operationId"], "parameters": params}


def build_document(routes: Iterable[tuple[str, str, Any, str]], *, title: str = "pet-api",
                   version: str = "1.0.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the mounted routes: (path, method, function, plugin) tuples."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    tags: list[str] = []
    for path, method, fn, plugin in routes:
        paths.setdefault(path, {})[method] = describe(path, method, fn, schemas, plugin)
        tags += [] if plugin in tags else [plugin]
    _add_links(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "The JSON API behind the pet app. Every success is `{code, data, message}` "
                                "(lists add `page`); every error is `{error_code, message, request}` (validation "
                                "errors add `errors`). Log in with POST /v1/tokens and send "
                                "`Authorization: Bearer <token>`."},
        "servers": [{"url": "/"}],
        "tags": [{"name": tag, "description": f"routes of the {tag} plugin"} for tag in tags],
        "paths": paths,
        "components": {"schemas": schemas.components,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                          "description": "POST /v1/tokens gives the token"}}},
    }


class ApiDocument:
    """The document of an application's mounted routes, rebuilt when the UTC date changes (some schemas,
    like "a birth date not in the future", depend on today) and kept serialized."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._day: dt.date | None = None
        self._json = b""

    def json(self) -> bytes:
        """The document as JSON bytes."""
        today = dt.datetime.now(dt.UTC).date()
        if today != self._day:
            self._json = orjson.dumps(build_document(
                (p, m, fn, plugin) for p, m, fn, plugin in self.app.route_table() if getattr(fn, "operation", None)))
            self._day = today
        return self._json

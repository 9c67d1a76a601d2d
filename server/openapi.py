"""The OpenAPI 3.1 document, built from what each handler method declares (server/declare.py) and from
the error classes (server/errors.py), so the document and the server cannot drift apart."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import TypeAdapter

from server.declare import Operation
from server.errors import ErrorCatalog
from server.idempotency import KEY_PATTERN
from server.plugins import TOKEN_SEGMENT, template, token_parts
from server.schemas.common import MAX_ID

REF = "#/components/schemas/{model}"
JSON = "application/json"
LICENSE = {"name": "MIT", "identifier": "MIT"}  # the LICENSE file at the root
# status -> what the document says of it; the codes each can carry come from server/errors.py
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid parameter: `errors` lists every failing field",
    401: "Authorization failed: missing, malformed, invalid, expired or revoked token",
    403: "Forbidden: the token lacks a required scope",
    404: "Not found (also another user's resource); 1007 when the path matches no route",
    409: "Conflict with the current state of what the request names; `error_code` says which (GET /v1/errors)",
    410: "Gone: the resource can no longer be used (e.g. an expired invitation), or the sync cursor is older than "
         "the change log's retention (1012: sync again from the start); nothing was changed",
    412: "Precondition failed: If-Match does not name the current ETag, or If-None-Match does ('*': any); nothing "
         "was written",
    413: "Request body too large",
    415: "Unsupported media type: send application/json (an upload: one of the media types of its request body, "
         "its content really of that type)",
    422: "Idempotency-Key reused with a different method, path or body (1011); nothing was done",
    429: "Too many requests: see Retry-After",
    503: "Service unavailable (database unreachable): see Retry-After",
}
# The 409 of an operation that takes Idempotency-Key only: no other has a key to be still running.
KEY_STILL_RUNNING = "1010: a request with the same Idempotency-Key is still running, see Retry-After"
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
    "total": {"type": ["integer", "null"], "description": "rows matching the filters, ignoring limit and offset; "
                                                         "null when the request said include_total=false"},
    "next_cursor": {"type": ["string", "null"],
                    "description": "pass as `cursor` for the next page (with the same sort and filters); null on the "
                                   "last page; absent on the lists that take offset only"}}}
# Any value is accepted: one that names no current version (a stale tag, a weak one, or not a tag at all) is 412.
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": 'ETag of the version you last read (e.g. "v3", or a list "v3", "v4"): the write '
                           "happens only if one of them is still current (compared strongly, to the character: a "
                           'weak W/"v3" names none), else 412 and nothing is written. "*" or no If-Match: the write '
                           "always applies."}
WRITE_IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": 'The reverse of If-Match: "*", or a list naming the current ETag (compared '
                                      'weakly: W/"v3" names "v3"), answers 412 and nothing is written.'}
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "schema": {"type": "string", "pattern": KEY_PATTERN},
                   "description": "Any unique value (e.g. a UUID) to make retries safe: a retry with the same key, "
                                  "method, path and body replays the first answer (with `Idempotent-Replayed: true`) "
                                  "and does nothing more; the same key with another request is 422/1011; while the "
                                  "first request runs, 409/1010. Answers are kept `idempotency_retention_seconds` "
                                  "(24 h); failed requests are not kept, so their retry runs afresh."}
IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "The ETag of the answer you hold: while it is still current the answer is 304 with no "
                                "body (the tag comes from the data, so every instance agrees)."}
NOT_MODIFIED = {"description": "Not modified: If-None-Match names the current ETag; no body",
                "headers": {"ETag": {"description": "the current tag", "required": True, "schema": {"type": "string"}}}}
REPLAYED = {"description": "`true` when this is the stored answer to an earlier request with the same "
                           "Idempotency-Key", "required": False, "schema": {"type": "string", "const": "true"}}


def _drop_null_defaults(schema: Any) -> Any:
    """pydantic writes "default": null for optional fields; in the document absent already means that."""
    if isinstance(schema, dict):
        return {k: _drop_null_defaults(v) for k, v in schema.items() if not (k == "default" and v is None)}
    if isinstance(schema, list):
        return [_drop_null_defaults(v) for v in schema]
    return schema


def _defaults_in_words(schema: Any) -> Any:
    """A request's optional fields say their default in words, not as `default`: generated clients (TypeScript's
    openapi-typescript) read a default as "always present" and would make the caller send the field."""
    if isinstance(schema, list):
        return [_defaults_in_words(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: ({name: _defaults_in_words(prop) for name, prop in v.items()} if k == "properties"
               else _defaults_in_words(v)) for k, v in schema.items()}
    if "default" in out:
        default = out.pop("default")
        said = f"absent: {orjson.dumps(default).decode()}"
        out["description"] = f"{out['description']}; {said}" if out.get("description") else said.capitalize()
    return out


class _Schemas:
    """Collects component schemas while operations are described."""

    def __init__(self, catalog: ErrorCatalog) -> None:
        self.catalog = catalog
        self.components: dict[str, Any] = {"Error": ERROR_SCHEMA, "Page": PAGE_SCHEMA}

    def of(self, tp: Any, mode: str) -> dict[str, Any]:
        if tp is None:
            return {"type": "null"}
        schema: dict[str, Any] = _drop_null_defaults(TypeAdapter(tp).json_schema(ref_template=REF, mode=mode))  # type: ignore[arg-type]
        if mode == "validation":
            schema = _defaults_in_words(schema)
        self.components.update(schema.pop("$defs", {}))
        name = getattr(tp, "__name__", None)
        if name and schema.get("type") == "object" and "properties" in schema:
            self.components[name] = schema
            return {"$ref": REF.format(model=name)}
        return schema

    def error(self, status: int, description: str | None = None) -> dict[str, Any]:
        name = f"Error{status}"
        codes = list(self.catalog.codes_for(status))
        self.components[name] = {"allOf": [{"$ref": REF.format(model="Error")},
                                           {"properties": {"error_code": {"enum": codes}}}]}
        return {"description": description or ERROR_DESCRIPTIONS.get(status, "Error"),
                "content": {JSON: {"schema": {"$ref": REF.format(model=name)}}}}


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
    tokens = token_parts(path)
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "pattern": f"^{TOKEN_SEGMENT}$"} if name in tokens
         else {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}}
        for name in re.findall(r"\{(\w+)(?::token)?\}", path)]
    if op.query is not None:
        schema = _defaults_in_words(_drop_null_defaults(TypeAdapter(op.query).json_schema(ref_template=REF)))
        _int64_ids(schema)
        schemas.components.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        params += [_query_parameter(name, prop, name in required) for name, prop in schema["properties"].items()]
    params += op.request_headers
    if op.conditional:
        params += [IF_MATCH if op.if_match is None else {**IF_MATCH, "description": op.if_match}, WRITE_IF_NONE_MATCH]
    if op.cached:
        params.append(IF_NONE_MATCH)
    if op.idempotent:
        params.append(IDEMPOTENCY_KEY)
    return params


def _success(op: Operation, schemas: _Schemas, status: int | None = None) -> dict[str, Any]:
    if op.media_type is not None:
        types = (op.media_type,) if isinstance(op.media_type, str) else op.media_type
        content = {media_type: {"schema": op.schema or {"type": "string"}} for media_type in types}
    else:
        envelope: dict[str, Any] = {
            "type": "object", "required": ["code", "data", "message"],
            "properties": {"code": {"type": "integer", "const": status or op.status},
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
    if op.idempotent:
        success.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED
    if op.cached:
        success.setdefault("headers", {}).setdefault(
            "ETag", {"description": "tag of this answer, for If-None-Match", "required": True,
                     "schema": {"type": "string"}})
    return success


def _error_description(op: Operation, status: int) -> str:
    """What an error status means for this operation: its own why, or the usual text; a 409 names 1010 only where
    the operation takes Idempotency-Key."""
    text = op.why.get(status) or ERROR_DESCRIPTIONS.get(status, "Error")
    return f"{text}; {KEY_STILL_RUNNING}" if status == 409 and op.idempotent else text


def describe(path: str, method: str, fn: Any, schemas: _Schemas, tag: str) -> dict[str, Any]:
    """The OpenAPI operation object of one handler method. Every operation lists 400: one that takes no query
    parameter still refuses any it is sent (400/1001 naming it, server/declare.py)."""
    op: Operation = getattr(fn, "operation", None) or Operation(summary=fn.__doc__ or method.upper())
    scopes = sorted(getattr(fn, "required_scopes", ()))
    secured = hasattr(fn, "required_scopes")
    statuses = set(op.errors) | {400}
    if op.media_type is None:
        statuses.add(503)  # JSON operations may need the database
    if op.body is not None or op.upload:
        statuses |= {413, 415}
    if op.conditional:
        statuses.add(412)
    if op.idempotent:
        statuses |= {409, 422}
    if secured:
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    out: dict[str, Any] = {
        "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', template(path)).strip('_')}",
        "summary": op.summary,
        "tags": [tag],
        "parameters": _parameters(path, op, schemas),
        "responses": {str(op.status): _success(op, schemas),
                      **{str(s): _success(op, schemas, s) for s in op.also},
                      **({"304": NOT_MODIFIED} if op.cached else {}),
                      **{str(s): schemas.error(s, _error_description(op, s)) for s in sorted(statuses)}},
    }
    if secured:
        out["description"] = ("Requires a bearer token with scope " + ", ".join(f"`{s}`" for s in scopes) + "."
                              if scopes else "Requires a bearer token (any scope).")
    else:
        out["description"] = "Public: send no token."
    if op.body is not None:
        body_schema = schemas.of(op.body, "validation")
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": body_schema}}}
    if op.upload:
        out["requestBody"] = {"required": True, "description": "the raw bytes of the file (not JSON, not a form)",
                              "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in op.upload}}
    if secured:
        # The scopes are named in x-required-scopes and the description, not in the requirement: OpenAPI gives
        # scopes to OAuth2 and OpenID Connect schemes, and linters (Spectral) flag them on an HTTP bearer scheme.
        out["security"] = [{"bearerAuth": []}]
        out["x-required-scopes"] = scopes
    else:  # said, not implied: linters and generated clients must not send a token here
        out["security"] = []
    return out


def _add_links(paths: dict[str, dict[str, Any]]) -> None:
    """A 201 that creates `P/{x}` links to the operations on `P/{x}` and the paths under it that need no
    other parameter (OpenAPI links: clients and schemathesis' stateful phase follow them). The created ETag goes
    as If-Match only where If-Match names that version: not where it names another tag (`if_match`, the photo's)."""
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
                    if "ETag" in created.get("headers", {}) and IF_MATCH in target["parameters"]:
                        params["header.If-Match"] = "$response.header.ETag"
                    created.setdefault("links", {})[target["operationId"]] = {
                        "operationId": target["operationId"], "parameters": params}


def _int64_ids(schema: Any) -> None:
    """Every integer id (a property named id or *_id, in requests and answers) is a BIGINT: format int64, so
    that generated clients do not hold it in a 32-bit integer."""
    if isinstance(schema, list):
        for item in schema:
            _int64_ids(item)
    if not isinstance(schema, dict):
        return
    for name, prop in (schema.get("properties") or {}).items():
        if name == "id" or name.endswith("_id"):
            for option in [prop, *prop.get("anyOf", [])] if isinstance(prop, dict) else []:
                if option.get("type") == "integer":
                    option["format"] = "int64"
    for value in schema.values():
        _int64_ids(value)


def build_document(routes: Iterable[tuple[str, str, Any, str]], *, catalog: ErrorCatalog | None = None,
                   scopes: dict[str, str] | None = None, title: str = "pet-api",
                   version: str = "1.0.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the mounted routes ((path, method, function, plugin) tuples), with the error
    codes of the catalog (default: the core's) and the scopes the plugins declare (scope -> description)."""
    schemas = _Schemas(catalog or ErrorCatalog())
    paths: dict[str, dict[str, Any]] = {}
    tags: list[str] = []
    for path, method, fn, plugin in routes:
        paths.setdefault(template(path), {})[method] = describe(path, method, fn, schemas, plugin)
        tags += [] if plugin in tags else [plugin]
    _add_links(paths)
    _int64_ids(schemas.components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "license": LICENSE,
                 "description": "The JSON API behind the pet app. Every success is `{code, data, message}` "
                                "(lists add `page`); every error is `{error_code, message, request}` (validation "
                                "errors add `errors`). Log in with POST /v1/tokens and send "
                                "`Authorization: Bearer <token>`. Any operation may also answer 400/1001 to a "
                                "request HTTP cannot parse, and 431/1007 to a header block over the server's "
                                "max_header_size (64 KiB by default)."},
        "servers": [{"url": "/"}],
        "tags": [{"name": tag, "description": f"routes of the {tag} plugin"} for tag in tags],
        "paths": paths,
        "components": {"schemas": schemas.components,
                       "securitySchemes": {"bearerAuth": {
                           "type": "http", "scheme": "bearer",
                           "description": "POST /v1/tokens gives the token; it carries the scopes of the user's "
                                          "role. Scopes: " + "; ".join(f"`{k}`: {v}" for k, v in sorted(
                                              (scopes or {}).items())),
                           "x-scopes": dict(sorted((scopes or {}).items()))}}},
    }


class ApiDocument:
    """The document of an application's mounted routes, built on first use and kept serialized (nothing in it
    depends on the day: "a birth date not in the future" is said in words and checked by the server)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._json = b""

    def json(self) -> bytes:
        """The document as JSON bytes."""
        if not self._json:
            self._json = orjson.dumps(build_document(
                ((p, m, fn, plugin) for p, m, fn, plugin in self.app.route_table() if getattr(fn, "operation", None)),
                catalog=self.app.error_catalog,
                scopes={s.name: s.description for s in self.app.plugin_set.scopes.values()}))
        return self._json

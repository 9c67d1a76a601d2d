"""Turning request bodies and query strings into declared pydantic models, or InvalidParameter."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from server.errors import InvalidParameter

M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused (no mass assignment). A boolean field is a StrictBool: JSON
    has booleans, and pydantic's lax bool would read "no", "off" or 0 as false and "yes" or 1 as true (a query
    parameter, a string by nature, stays lax)."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Base of query-string models: unknown parameters and bad values are refused, naming the parameter (a
    misspelt filter must not silently answer everything)."""

    model_config = ConfigDict(extra="forbid")


class NoQuery(Query):
    """The query of an operation that takes no parameters: any parameter is unknown."""


# Fields the server owns: sending one is refused as read-only rather than unknown.
READ_ONLY = frozenset({"id", "owner_id", "pet_id", "version", "created_at", "updated_at", "role", "disabled",
                       "password_hash", "user_id"})


def field_errors(exc: ValidationError, *, fields: Iterable[str] = (), query: bool = False) -> list[dict[str, str]]:
    """Every failing field of a pydantic error, named the way the client sent it.

    A model-level check has no location; when its message starts with one of the model's fields
    ("current_password is required ..."), that field is named, else "body"."""
    out = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        message = err["msg"].removeprefix("Value error, ")
        if err["loc"]:
            field = ".".join(str(p) for p in err["loc"])
        else:
            first = message.split(" ", 1)[0]
            field = first if first in fields else "body"
        if err["type"] == "extra_forbidden":
            if query:
                message = "unknown parameter"
            else:
                message = "read-only field" if str(err["loc"][-1]) in READ_ONLY else "unknown field"
        out.append({"field": field, "message": message})
    return out


def parse_json(raw: bytes) -> dict[str, Any]:
    """A JSON object from a request body, or InvalidParameter."""
    if not raw.strip():
        raise InvalidParameter("request body is empty",
                               errors=[{"field": "body", "message": "a JSON object is required"}])
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidParameter("malformed JSON", errors=[{"field": "body", "message": "malformed JSON"}]) from None
    if not isinstance(data, dict):
        raise InvalidParameter("request body must be a JSON object",
                               errors=[{"field": "body", "message": "a JSON object is required"}])
    return data


def validate(model: type[M], data: dict[str, Any]) -> M:
    """data validated into model, or InvalidParameter listing every failing field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidParameter(errors=field_errors(exc, fields=model.model_fields,
                                                   query=issubclass(model, Query))) from None

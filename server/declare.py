"""The per-request side of declared operations: one decorator validates body/query with pydantic models
and records what the API document (server/openapi.py) says about the operation."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from server.idempotency import KEY_HEADER
from server.validation import NoQuery

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
READS = ("GET", "HEAD", "OPTIONS")  # a GET's If-Match is evaluated against its answer's ETag (check_etag_header)


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
    media_type: str | tuple[str, ...] | None = None  # a raw (not enveloped) response: its media type(s)
    schema: dict[str, Any] | None = None  # ... and its schema
    idempotent: bool = False  # takes Idempotency-Key (server/idempotency.py)
    upload: tuple[str, ...] = ()  # the body is raw bytes of one of these media types (not JSON)
    also: tuple[int, ...] = ()  # other success statuses with the same response (201 for a PUT that creates)
    cached: bool = False  # sends an ETag and answers If-None-Match with 304 (lists always do)
    if_match: str | None = None  # what If-Match names, when not the pet's version (conditional operations)
    why: dict[int, str] = field(default_factory=dict)  # an error status's description, where not the usual one
    request_headers: tuple[dict[str, Any], ...] = ()  # header parameters the method reads itself


def operation(*, summary: str, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              response: Any = None, status: int = 200, errors: Iterable[int] = (), paginated: bool = False,
              headers: dict[str, str] | None = None, conditional: bool = False,
              media_type: str | tuple[str, ...] | None = None, schema: dict[str, Any] | None = None,
              idempotent: bool = False, upload: Iterable[str] = (), also: Iterable[int] = (),
              cached: bool = False, if_match: str | None = None, why: dict[int, str] | None = None,
              before: Callable[..., Awaitable[None]] | None = None,
              request_headers: Iterable[dict[str, Any]] = ()) -> Callable[[F], F]:
    """Declare an operation: body/query models are validated and passed as `body=` / `query=`.

    headers: response headers always sent (name -> description); conditional: the method evaluates If-Match itself
    against the resource's tag (412); on any other write, an If-Match but '*' is 412 before the method runs;
    media_type/schema: the response is that document itself instead of the JSON envelope; idempotent: an
    Idempotency-Key makes retries replay the first answer (server/idempotency.py); such a method reaches the
    database through `self.db` (the request's transaction) and answers with `self.send`; upload: the body is
    the raw bytes of one of these media types, read by the method itself; also: other success statuses;
    cached: the answer carries an ETag and If-None-Match with it is 304 (`self.send(..., etag=...)`, or the
    method's own for raw answers; paginated lists always are); if_match: the If-Match parameter's description
    where the tag is not the pet's version (the photo's); why: status -> what it means here, where the shared
    description (openapi.ERROR_DESCRIPTIONS) does not say it; before: called as the method is (handler,
    path arguments, body/query) ahead of it and outside an Idempotency-Key's transaction, so what it writes
    commits on its own whatever the method then does (a throttle's count: a failure rolling the key back keeps it);
    request_headers: the OpenAPI parameter objects of the request headers the method reads itself (the ones the
    decorator's options imply, If-Match and the like, are added by the document)."""
    op = Operation(summary, body, query, response, status, tuple(errors), paginated, headers or {}, conditional,
                   media_type, schema, idempotent, tuple(upload), tuple(also), cached or paginated, if_match, why or {},
                   tuple(request_headers))

    def decorator(method: F) -> F:
        @functools.wraps(method)
        async def wrapper(handler: Any, *args: Any, **kwargs: Any) -> Any:
            if body is not None:
                kwargs["body"] = handler.parse_body(body)
            elif not upload and handler.request.method not in READS:
                handler.refuse_body()
            if query is not None:
                kwargs["query"] = handler.parse_query(query)
            elif handler.request.query_arguments:
                handler.parse_query(NoQuery)  # refuses them, naming each
            if not conditional and handler.request.method not in READS:
                handler.check_if_match(None)  # a write with no tag to compare: any tag list is false (412)
            if before is not None:
                await before(handler, *args, **kwargs)
            if idempotent and KEY_HEADER in handler.request.headers:
                return await handler.application.idempotency.run(
                    handler, functools.partial(method, handler, *args, **kwargs))
            return await method(handler, *args, **kwargs)

        wrapper.operation = op  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator

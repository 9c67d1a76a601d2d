"""Security events (ASVS 16.3.1-16.3.3): one JSON line on the `pet_api.security` logger for each
authentication, session, credential and administration action, succeeded or refused.

Each line names the event, its outcome, the user id when known, the client address and the request id.
Only the fields named in server/logs.py's EXTRA_KEYS are written: a password or token passed by mistake
never reaches the log."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from server.errors import APIError

SECURITY = logging.getLogger("pet_api.security")

# Why a refusal happened, by error code, unless the service said more precisely (note(reason=...)).
REASONS = {1001: "invalid_parameter", 1002: "not_found", 1003: "bad_credentials", 1004: "forbidden",
           1005: "conflict", 1006: "throttled", 10031: "invalid_token", 10032: "expired_token",
           10033: "revoked_token", 10034: "second_factor"}


@dataclass(slots=True)
class _Event:
    client: str | None
    request_id: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    happened: bool = True  # False: the request changed nothing, no line (nothing_happened)


# The event of the request being handled: services add what only they know (the account a failed login
# named, a replayed refresh token's session) without taking the request as an argument.
_CURRENT: ContextVar[_Event | None] = ContextVar("pet_api_security_event", default=None)


def security_event(name: str, *, outcome: str, client: str | None = None, request_id: str | None = None,
                   **fields: Any) -> None:
    """Write one security event line (WARNING when refused, INFO otherwise); None fields are left out."""
    extra = {"event": name, "outcome": outcome, "client": client, "request_id": request_id, **fields}
    level = logging.INFO if outcome == "success" else logging.WARNING
    SECURITY.log(level, name, extra={key: value for key, value in extra.items() if value is not None})


def note(**fields: Any) -> None:
    """Add fields to the event of the current request (nothing outside one, e.g. the command line)."""
    current = _CURRENT.get()
    if current is not None:
        current.fields.update(fields)


def nothing_happened() -> None:
    """The current request succeeded without changing anything (an administrator's PATCH whose values are the
    account's own): its event is not written, as no action took place."""
    current = _CURRENT.get()
    if current is not None:
        current.happened = False


@contextlib.contextmanager
def audited(handler: Any, name: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Log event `name` for the handler's request when the block ends: outcome success, or failure with the
    error code and reason. The caller's user id is filled in when the request is authenticated; the block
    may add fields to the yielded dict."""
    user = getattr(handler, "_current_user", None)  # set by authenticate(); never a new lookup here
    event = _Event(client=handler.request.remote_ip or None, request_id=getattr(handler, "request_id", None),
                   fields={"user_id": getattr(user, "user_id", None), **fields})
    token = _CURRENT.set(event)
    outcome, failure = "cancelled", {}  # unless the block ends: a client gone mid-request is no success
    try:
        yield event.fields
        outcome = "success"
    except APIError as error:
        outcome, failure = "failure", {"error_code": error.code, "reason": REASONS.get(error.code)}
        raise
    except Exception:
        outcome, failure = "error", {"error_code": 999}
        raise
    finally:
        _CURRENT.reset(token)
        if event.happened or outcome != "success":
            security_event(name, outcome=outcome, client=event.client, request_id=event.request_id,
                           **{**failure, **event.fields})

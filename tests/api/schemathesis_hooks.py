"""Schemathesis hooks for tests/api/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

PATCH /v1/users/me checks `current_password` against the account's real password, which no generator
can guess: with a random one every schema-valid password change is refused (400, "does not match").
A generated password change that is valid as to its shape is therefore sent with the real password as
both the current and the new one, so that the request really is valid and must be accepted; the
server then revokes the user's tokens and Schemathesis logs in again (dynamic auth, retry on 401).
Invalid passwords are left alone, so negative cases still reach the server as generated.

A generated password of a valid length may be one of the shipped common or breached passwords ("00000000" is),
which the server refuses (400) though no schema can list 55,860 strings: such a password is made uncommon by a
suffix. One holding a context word (the service's name, the body's e-mail name or nickname), which the server
refuses too, is replaced by a random one of a valid length.

A valid generated Idempotency-Key is made unique for each call: a key that comes again replays the first
answer, which names a resource a later step of the stateful phase may have deleted (Schemathesis reports
that as "created resource not found"), or is 422/1011 with another body. tests/test_idempotency.py covers
reuse; invalid keys are left alone (400).

A generated `cursor` of a schema-valid length is dropped: a cursor is made by the server (signed for GET /v1/sync,
the last row's keys for lists), so a generated one is as wrong as a generated token would be, and 400 is the
right answer to it (tests/plugins/sync/test_sync.py and tests/services/test_cursor_pages.py check forged ones).

A generated `birth_date` after today is moved to today: the document says "not after today" in words only (a
pattern of the dates up to today would change the document every day), so a schema-valid generated date may be
one the server rightly refuses (400, tested in tests/test_openapi.py). Likewise a record's `date` or `due_date` more
than ten years after today is moved to today (the lower bound, 1900-01-01, is a pattern in the document; tested
in tests/plugins/records/test_handlers.py). A record's `completed_at` outside 1900-01-01T00:00:00Z to now plus a day
(said in words too: an instant's bound in a pattern would have to account for every zone offset) is moved to now.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import schemathesis

from server.idempotency import KEY_HEADER, KEY_RE
from server.plugins.accounts.passwords import common_passwords, context_words

MIN_PASSWORD = 8
MAX_CURSOR = 512  # the cursor fields' maxLength (sync and lists)
EARLIEST_COMPLETION = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


def _has_context_word(password: str, body: dict[str, Any]) -> bool:
    email = body.get("email")
    words = context_words(email=email if isinstance(email, str) else "")
    compact = "".join(ch for ch in password.casefold() if ch.isalnum())
    return any(word in compact for word in words)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    cursor = (case.query or {}).get("cursor")
    if isinstance(cursor, str) and 1 <= len(cursor) <= MAX_CURSOR:
        del case.query["cursor"]
    key = (case.headers or {}).get(KEY_HEADER)
    if isinstance(key, str) and KEY_RE.fullmatch(key):
        case.headers[KEY_HEADER] = f"{key[:222]}-{uuid.uuid4().hex}"
    if not isinstance(case.body, dict):
        return
    today = dt.datetime.now(dt.UTC).date()
    ahead = today + dt.timedelta(days=9 * 365)  # within the ten years, whatever today is
    latest = {"birth_date": today, "date": ahead, "due_date": ahead}
    for name in (("date", "due_date") if "/records" in case.operation.path else ("birth_date",)):
        value = case.body.get(name)
        try:
            if isinstance(value, str) and dt.date.fromisoformat(value) > latest[name]:
                case.body[name] = today.isoformat()
        except ValueError:  # not a date: left for the server to refuse
            pass
    completed = case.body.get("completed_at") if "/records" in case.operation.path else None
    try:
        instant = dt.datetime.fromisoformat(completed) if isinstance(completed, str) else None
    except ValueError:  # not an instant: left for the server to refuse
        instant = None
    if instant is not None and instant.tzinfo is not None and not (
            EARLIEST_COMPLETION <= instant <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)):
        case.body["completed_at"] = dt.datetime.now(dt.UTC).isoformat()
    password = case.body.get("password")
    if isinstance(password, str) and password.strip().lower() in common_passwords() and len(password) <= 250:
        case.body["password"] = password = password + "-x9Q!"
    if isinstance(password, str) and MIN_PASSWORD <= len(password) <= 256 and _has_context_word(password, case.body):
        case.body["password"] = f"zq-{uuid.uuid4().hex}"
    if case.operation.label != "PATCH /v1/users/me":
        return
    if isinstance(password, str) and MIN_PASSWORD <= len(password) <= 256 and "current_password" in case.body:
        case.body["password"] = case.body["current_password"] = os.environ["ST_SECRET"]

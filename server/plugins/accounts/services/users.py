"""Users: rows, creation, look-ups and updates."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import orjson

from server.db import Executor, IntegrityViolation, Value, column
from server.errors import Conflict, NotFound
from server.plugins.accounts.lookalikes import email_skeleton
from server.services import Found, Key, Sort, fetch_page, json_row, utcnow

COLUMNS = "id, email, password_hash, nickname, role, disabled, created_at, email_verified_at, language"
ROW = json_row(COLUMNS)
UPDATABLE = frozenset({"nickname", "password_hash", "role", "disabled", "email_verified_at"})
TAKEN = "the e-mail is already registered"
LANGUAGES = ("en", "zh")  # the languages of messages (English, Simplified Chinese)


@dataclass(slots=True)
class UserOut:
    """What a user sees of an account (never the hash)."""

    id: int
    email: str
    nickname: str
    role: str
    created_at: dt.datetime
    email_verified: bool


@dataclass(slots=True)
class AdminUserOut(UserOut):
    """What an administrator sees: also whether the account is disabled."""

    disabled: bool


@dataclass(slots=True)
class User:
    id: int
    email: str
    password_hash: str
    nickname: str
    role: str
    disabled: bool
    created_at: dt.datetime
    email_verified: bool = False
    language: str = "en"

    @classmethod
    def from_json(cls, text: str) -> User:
        """A user from the JSON array that ROW selects."""
        r = orjson.loads(text)
        return cls(r[0], r[1], r[2], r[3], r[4], bool(r[5]), dt.datetime.fromisoformat(r[6]), r[7] is not None, r[8])

    @property
    def location(self) -> str:
        """The account's URL (the Location of its registration)."""
        return location_of(self.id)

    def public(self) -> UserOut:
        return UserOut(self.id, self.email, self.nickname, self.role, self.created_at, self.email_verified)

    def admin_view(self) -> AdminUserOut:
        return AdminUserOut(self.id, self.email, self.nickname, self.role, self.created_at, self.email_verified,
                            self.disabled)


def location_of(user_id: int) -> str:
    """The URL of the account with this id."""
    return f"/v1/users/{user_id}"


def normalize_email(email: str) -> str:
    """E-mails are unique case-insensitively: store and look up in lower case."""
    return email.strip().lower()


async def create_user(db: Executor, *, email: str, password_hash: str, nickname: str, role: str = "user",
                      language: str = "en", verified: bool = False) -> User:
    """Insert a user (verified: its address counts as proven from the start); 409 when the e-mail, or a look-alike
    of it, is taken (one answer for both: the look-alike rule must not tell a caller more about which accounts
    exist than the exact rule does)."""
    now = utcnow()
    try:
        result = await db.execute(
            "INSERT INTO users (email, email_skeleton, password_hash, nickname, role, disabled, created_at, updated_at,"
            " language, email_verified_at) VALUES (%s, %s, %s, %s, %s, 0, %s, %s, %s, %s)",
            (normalize_email(email), email_skeleton(email), password_hash, nickname, role, now, now, language,
             now if verified else None))
    except IntegrityViolation:
        raise Conflict(TAKEN) from None
    assert result.lastrowid is not None
    return User(result.lastrowid, normalize_email(email), password_hash, nickname, role, False, now, verified,
                language)


async def get_user(db: Executor, *, user_id: int, lock: bool = False) -> User:
    """The user, or 404. With lock (inside a transaction): a locking read, which sees the row as last committed
    (not the transaction's snapshot) and holds it until the commit."""
    row = await db.fetch_one(f"SELECT {ROW} FROM users WHERE id = %s"  # noqa: S608
                             f"{db.dialect.for_update if lock else ''}", (user_id,))
    if row is None:
        raise NotFound()
    return User.from_json(column(row[0], str))


async def find_user_by_email(db: Executor, *, email: str) -> User | None:
    """The user with that e-mail, or None."""
    row = await db.fetch_one(f"SELECT {ROW} FROM users WHERE email = %s",  # noqa: S608
                             (normalize_email(email),))
    return None if row is None else User.from_json(column(row[0], str))


BY_ID = Sort((Key("id", "id", int),))


async def list_users(db: Executor, *, limit: int, offset: int, cursor: str | None = None,
                     count: bool = True) -> Found[User]:
    """A page of users in id order, the total (unless count is False) and the next page's cursor."""
    return await fetch_page(db, row=ROW, table="users", where="1 = 1", args=(), sort=BY_ID, sort_name="id",
                            limit=limit, offset=offset, cursor=cursor, count=count, decode=User.from_json)


async def update_user(db: Executor, *, user_id: int, fields: dict[str, Value]) -> User:
    """Set the given columns (only UPDATABLE ones) and return the fresh row; 404 if absent."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if fields:
        assignments = ", ".join(f"{name} = %s" for name in fields)
        result = await db.execute(f"UPDATE users SET {assignments}, updated_at = %s WHERE id = %s",  # noqa: S608
                                  (*fields.values(), utcnow(), user_id))
        if result.rowcount == 0:
            raise NotFound()
    return await get_user(db, user_id=user_id)


async def backfill_email_skeletons(db: Executor, *, batch: int = 300) -> tuple[int, list[int]]:
    """Give every user without one its email_skeleton, oldest account first (rows from before accounts 0005, or
    written meanwhile by an older instance), one UPDATE per page: (how many were set, ids of accounts left without
    one because an older account already holds their key, i.e. look-alikes registered before the rule; they keep
    working). Workers starting at once each skip what another has set; 300 rows use 900 parameters, under
    SQLite's oldest limit (999)."""
    done, lookalikes, after = 0, [], 0
    while rows := await db.fetch_all("SELECT id, email FROM users WHERE email_skeleton IS NULL AND id > %s"
                                     " ORDER BY id LIMIT %s", (after, batch)):
        keys = [(column(row[0], int), email_skeleton(column(row[1], str))) for row in rows]
        set_here, taken = await db.run_transaction(functools.partial(_set_page, keys=keys))  # again on 1213/1205
        done, after = done + set_here, keys[-1][0]
        lookalikes += taken
    return done, lookalikes


async def _set_page(tx: Executor, *, keys: list[tuple[int, str]]) -> tuple[int, list[int]]:
    """One UPDATE for the page; a duplicate key undoes that whole statement, and only it (on both databases): then
    row by row, oldest first."""
    whens = " ".join(["WHEN %s THEN %s"] * len(keys))
    try:
        result = await tx.execute(f"UPDATE users SET email_skeleton = CASE id {whens} END"  # noqa: S608
                                  f" WHERE id IN ({', '.join(['%s'] * len(keys))}) AND email_skeleton IS NULL",
                                  (*(v for pair in keys for v in pair), *(user_id for user_id, _ in keys)))
    except IntegrityViolation:
        return await _set_keys(tx, keys=keys)
    return result.rowcount, []


async def _set_keys(tx: Executor, *, keys: list[tuple[int, str]]) -> tuple[int, list[int]]:
    """Set each (user id, key) still unset: (how many were set, ids whose key an older account holds)."""
    done, taken = 0, []
    for user_id, key in keys:
        try:  # a duplicate key undoes this statement only, on both databases
            result = await tx.execute("UPDATE users SET email_skeleton = %s WHERE id = %s AND email_skeleton IS NULL",
                                      (key, user_id))
        except IntegrityViolation:
            taken.append(user_id)
            continue
        done += result.rowcount
    return done, taken

"""Users: rows, creation, look-ups and updates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from server.db import Executor, IntegrityViolation
from server.errors import Conflict, NotFound
from server.services import as_datetime, utcnow

COLUMNS = "id, email, password_hash, nickname, role, disabled, created_at"
UPDATABLE = frozenset({"nickname", "password_hash", "role", "disabled"})


@dataclass(slots=True)
class UserOut:
    """What a user sees of an account (never the hash)."""

    id: int
    email: str
    nickname: str
    role: str
    created_at: dt.datetime


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

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> User:
        return cls(row[0], row[1], row[2], row[3], row[4], bool(row[5]), as_datetime(row[6]))

    def public(self) -> UserOut:
        return UserOut(self.id, self.email, self.nickname, self.role, self.created_at)

    def admin_view(self) -> AdminUserOut:
        return AdminUserOut(self.id, self.email, self.nickname, self.role, self.created_at, self.disabled)


def normalize_email(email: str) -> str:
    """E-mails are unique case-insensitively: store and look up in lower case."""
    return email.strip().lower()


async def create_user(db: Executor, *, email: str, password_hash: str, nickname: str, role: str = "user") -> User:
    """Insert a user; 409 when the e-mail is taken."""
    now = utcnow()
    try:
        result = await db.execute(
            "INSERT INTO users (email, password_hash, nickname, role, disabled, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, 0, %s, %s)", (normalize_email(email), password_hash, nickname, role, now, now))
    except IntegrityViolation:
        raise Conflict("the e-mail is already registered") from None
    assert result.lastrowid is not None
    return User(result.lastrowid, normalize_email(email), password_hash, nickname, role, False, now)


async def get_user(db: Executor, *, user_id: int) -> User:
    """The user, or 404."""
    row = await db.fetch_one(f"SELECT {COLUMNS} FROM users WHERE id = %s", (user_id,))  # noqa: S608
    if row is None:
        raise NotFound()
    return User.from_row(row)


async def find_user_by_email(db: Executor, *, email: str) -> User | None:
    """The user with that e-mail, or None."""
    row = await db.fetch_one(f"SELECT {COLUMNS} FROM users WHERE email = %s",  # noqa: S608
                             (normalize_email(email),))
    return None if row is None else User.from_row(row)


async def list_users(db: Executor, *, limit: int, offset: int) -> tuple[list[User], int]:
    """A page of users in id order, and the total."""
    rows = await db.fetch_all(f"SELECT {COLUMNS} FROM users ORDER BY id LIMIT %s OFFSET %s",  # noqa: S608
                              (limit, offset))
    total = await db.fetch_one("SELECT COUNT(*) FROM users")
    return [User.from_row(r) for r in rows], int(total[0]) if total else 0


async def update_user(db: Executor, *, user_id: int, fields: dict[str, Any]) -> User:
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

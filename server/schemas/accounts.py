"""Request models of users and tokens."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints, model_validator

from server.validation import Body, Query

Password = Annotated[str, Field(min_length=8, max_length=256)]
Nickname = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class UserCreate(Body):
    email: Annotated[EmailStr, Field(max_length=254)]
    password: Password
    nickname: Nickname


class MeUpdate(Body):
    nickname: Nickname | None = None
    password: Password | None = None
    current_password: Annotated[str, Field(max_length=256)] | None = None

    @model_validator(mode="after")
    def _password_needs_current(self) -> MeUpdate:
        if self.password is not None and not self.current_password:
            raise ValueError("current_password is required to change the password")
        return self


class AdminUserUpdate(Body):
    role: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] | None = None
    disabled: bool | None = None


class TokenCreate(Body):
    account: Annotated[str, Field(min_length=1, max_length=254)]
    secret: Annotated[str, Field(min_length=1, max_length=256)]


class PageQuery(Query):
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000_000)


Role = Literal["user", "admin"]

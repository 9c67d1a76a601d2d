"""Request models of users and tokens."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, ConfigDict, EmailStr, Field, StrictBool, StringConstraints, model_validator

from server.plugins.accounts.passwords import MAX_LENGTH, MIN_LENGTH, not_common
from server.schemas.common import IncludeTotal, Limit, Offset, PageCursor, PatchBody, Text, patch_schema
from server.validation import Body, Query

Password = Annotated[str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH,
                                description="8 to 256 characters, not one of the 55,860 most common or breached "
                                            "passwords, without the service's name or the e-mail's name"),
                     AfterValidator(not_common)]
Nickname = Annotated[str, Text(64)]
# email-validator refuses special-use domains (RFC 6761 and friends); the document says so.
SPECIAL_USE_DOMAINS = {"not": {"pattern": r"\.(?:[aA][rR][pP][aA]|[iI][nN][vV][aA][lL][iI][dD]|[lL][oO][cC][aA][lL]"
                                          r"|[lL][oO][cC][aA][lL][hH][oO][sS][tT]|[oO][nN][iI][oO][nN]|[tT][eE][sS][tT])$"},
                       "description": "an e-mail address, at most 64 octets (UTF-8) before the @; special-use "
                                      "domains (.test, .localhost, .invalid, .local, .onion, .arpa) are refused; "
                                      "an address that reads like an existing account's is taken (409)"}
LOCAL_PART_OCTETS = 64  # RFC 5321 4.5.3.1.1; email-validator checks it only when strict, and in characters


def _local_part_fits(email: str) -> str:
    octets = len(email.rpartition("@")[0].encode())
    if octets > LOCAL_PART_OCTETS:
        raise ValueError(f"value is not a valid email address: the part before the @-sign is {octets} octets "
                         f"(UTF-8), at most {LOCAL_PART_OCTETS}")
    return email


Email = Annotated[EmailStr, Field(max_length=254, json_schema_extra=SPECIAL_USE_DOMAINS),
                  AfterValidator(_local_part_fits)]


def _me_update_schema(schema: dict[str, Any], model: type[PatchBody]) -> None:
    """The cross-field rules of MeUpdate, for the API document: something to change, and a password
    change names the current password."""
    patch_schema(schema, model)
    schema["if"] = {"required": ["password"], "properties": {"password": {"type": "string"}}}
    schema["then"] = {"required": ["current_password"],
                      "properties": {"current_password": {"type": "string", "minLength": 1}}}


class UserCreate(Body):
    email: Email
    password: Password
    nickname: Nickname


class MeUpdate(PatchBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_me_update_schema)
    null_means_unchanged: ClassVar[frozenset[str]] = frozenset({"nickname", "password"})
    qualifiers: ClassVar[frozenset[str]] = frozenset({"current_password"})

    nickname: Nickname | None = None
    password: Password | None = None
    current_password: Annotated[str, Field(max_length=256)] | None = None

    @model_validator(mode="after")
    def _password_needs_current(self) -> MeUpdate:
        if self.password is not None and not self.current_password:
            raise ValueError("current_password is required to change the password")
        return self


class AdminUserUpdate(PatchBody):
    """null means "leave as is": a body whose fields are all null changes nothing (400)."""

    null_means_unchanged: ClassVar[frozenset[str]] = frozenset({"role", "disabled"})

    role: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] | None = None
    disabled: StrictBool | None = None  # JSON true or false: not "no", 0 or "off" (which pydantic reads as false)


class TokenCreate(Body):
    account: Annotated[str, Field(min_length=1, max_length=254)]
    secret: Annotated[str, Field(min_length=1, max_length=256)]
    otp: Annotated[str, Field(min_length=6, max_length=32, description=(
        "with two-factor authentication on: the authenticator app's 6-digit code, or an unused recovery code"))
    ] | None = None


OtpCode = Annotated[str, Field(min_length=6, max_length=32, description="the authenticator app's 6-digit code "
                                                                        "(or, to turn it off, a recovery code)")]


class MfaCreate(Body):
    password: Annotated[str, Field(min_length=1, max_length=256, description="the account's password, again")]


class MfaConfirm(Body):
    code: OtpCode


class MfaDelete(Body):
    password: Annotated[str, Field(min_length=1, max_length=256, description="the account's password, again")]
    code: OtpCode


class PasswordResetCreate(Body):
    email: Annotated[str, Field(min_length=1, max_length=254)]


class PasswordResetConfirm(Body):
    token: Annotated[str, Field(min_length=1, max_length=256)]
    password: Password


class EmailVerificationConfirm(Body):
    token: Annotated[str, Field(min_length=1, max_length=256)]


class AccountDelete(Body):
    password: Annotated[str, Field(min_length=1, max_length=256, description="the account's password, again")]


class RefreshCreate(Body):
    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]


def _must_be_true(value: bool) -> bool:
    if not value:
        raise ValueError("must be true (one session ends with DELETE /v1/sessions/{id})")
    return value


class OthersQuery(Query):
    others: Annotated[bool, Field(description="must be true: end every session but the current one",
                                  json_schema_extra={"const": True}), AfterValidator(_must_be_true)]


class PageQuery(Query):
    limit: Limit = 20
    offset: Offset = 0
    cursor: PageCursor = None
    include_total: IncludeTotal = True

"""Users: register, the caller's own account, and the administrators' view."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from pydantic import Field

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler, dumps, id_param, preferred_language
from server.plugins.accounts.models import AccountDelete, AdminUserUpdate, MeUpdate, PageQuery, UserCreate
from server.plugins.accounts.services.credentials import change_own_account, set_role_or_disabled
from server.plugins.accounts.services.deletion import delete_account, delete_own_account
from server.plugins.accounts.services.export import FORMAT, write_export
from server.plugins.accounts.services.registration import admit_registration, register
from server.plugins.accounts.services.users import AdminUserOut, UserOut, get_user, list_users
from server.security_events import audited, nothing_happened
from server.services import page


@dataclass(slots=True)
class AccountChanged(UserOut):
    """The account after a change, and how many other sessions a password change ended."""

    sessions_ended: int


@dataclass(slots=True)
class Export:
    """GET /v1/users/me/export: every plugin's sections of the account's data (see the README's Accounts)."""

    format: str
    exported_at: dt.datetime
    user_id: int
    sections: Annotated[dict[str, list[Any]], Field(description=(
        "each enabled plugin's sections of the account's data by name (account, sessions, pets, pet_members, "
        "records, history, invitations_sent, invitations_received, reminders, calendar_feeds, photos with the "
        "built-in plugins), every one present: [] when it has no item"))]


class UsersHandler(BaseHandler):
    password_hash = ""

    async def admit(self, *, body: UserCreate) -> None:
        """The registration throttle and the password's hash, outside the request's Idempotency-Key transaction."""
        self.password_hash = await admit_registration(self.application.db, self.application.accounts,
                                                      email=body.email, password=body.password,
                                                      address=self.request.remote_ip or "")

    @operation(summary="Register a user (a verification message goes to the address, in the request's language)",
               body=UserCreate, status=201, response=UserOut, errors=(400, 409, 429, 503), idempotent=True,
               before=admit)
    async def post(self, *, body: UserCreate) -> None:
        app = self.application
        user = await register(self.db, app.accounts, email=body.email, password_hash=self.password_hash,
                              nickname=body.nickname,
                              language=preferred_language(self.request.headers.get("Accept-Language")))
        self.set_header("Location", user.location)
        self.send(user.public(), 201)

    @require_scopes("users:admin")
    @operation(summary="List users (administrators)", query=PageQuery, response=list[AdminUserOut], paginated=True,
               errors=(400, 401, 403, 503))
    async def get(self, *, query: PageQuery) -> None:
        found = await list_users(self.application.db, limit=query.limit, offset=query.offset, cursor=query.cursor,
                                 count=query.include_total)
        self.send([u.admin_view() for u in found.items], page=page(query.limit, query.offset, found))


class MeHandler(BaseHandler):
    @require_scopes("users:me")
    @operation(summary="The caller's account", response=UserOut, errors=(401, 403, 503))
    async def get(self) -> None:
        user = await get_user(self.application.db, user_id=self.current_user.user_id)
        self.send(user.public())

    @require_scopes("users:me")
    @operation(summary="Change the caller's nickname or password (a new password revokes the earlier access "
                       "tokens and ends every other session; this one continues through its refresh token)",
               body=MeUpdate, response=AccountChanged, errors=(400, 401, 403, 429, 503))
    async def patch(self, *, body: MeUpdate) -> None:
        app = self.application
        caller = self.current_user
        with audited(self, "password_changed" if body.password is not None else "nickname_changed") as event:
            change = await change_own_account(app.db, app.accounts, user_id=caller.user_id, nickname=body.nickname,
                                              password=body.password, current_password=body.current_password,
                                              address=self.request.remote_ip or "", session_id=caller.session_id)
            if not change.changed:
                nothing_happened()
            event["sessions_ended"] = change.sessions_ended
        self.send(AccountChanged(**asdict(change.user.public()), sessions_ended=change.sessions_ended))


    @require_scopes("users:me")
    @operation(summary="Delete the caller's account and everything it owns (type the password again; 403 when "
                       "it does not match, 409 for the last administrator)", body=AccountDelete, response=None,
               errors=(400, 401, 403, 409, 429, 503))
    async def delete(self, *, body: AccountDelete) -> None:
        app = self.application
        with audited(self, "account_deleted", target_user_id=self.current_user.user_id) as event:
            event["sessions_ended"] = await delete_own_account(app.db, app.accounts, user_id=self.current_user.user_id,
                                                               password=body.password,
                                                               address=self.request.remote_ip or "")
        self.send(None)


class ExportHandler(BaseHandler):
    @require_scopes("users:me")
    @operation(summary=f"Export the caller's data as one JSON document ({FORMAT}), streamed", response=Export,
               errors=(401, 403, 503))
    async def get(self) -> None:
        app = self.application
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Disposition", 'attachment; filename="pet-api-export.json"')
        await write_export(app.db, app.plugins, user_id=self.current_user.user_id, dumps=dumps, write=self.write,
                           flush=self.flush)
        self.finish()


class UserHandler(BaseHandler):
    @require_scopes("users:admin")
    @operation(summary="One user (administrators)", response=AdminUserOut, errors=(401, 403, 404, 503))
    async def get(self, user_id: str) -> None:
        user = await get_user(self.application.db, user_id=id_param(user_id))
        self.send(user.admin_view())

    @require_scopes("users:admin")
    @operation(summary="Change a user's role or disable the account (administrators; 409 for one's own account "
                       "and for the last active administrator; values the account already has change nothing: "
                       "200, no token revoked)", body=AdminUserUpdate,
               response=AdminUserOut, errors=(400, 401, 403, 404, 409, 503))
    async def patch(self, user_id: str, *, body: AdminUserUpdate) -> None:
        app = self.application
        with audited(self, "user_changed_by_admin", target_user_id=id_param(user_id), role=body.role,
                     disabled=body.disabled) as event:
            change = await set_role_or_disabled(app.db, app.accounts, user_id=id_param(user_id), role=body.role,
                                                disabled=body.disabled, actor_id=self.current_user.user_id)
            if not change.changed:
                nothing_happened()
            event["sessions_ended"] = change.sessions_ended
        self.send(change.user.admin_view())

    @require_scopes("users:admin")
    @operation(summary="Delete an account and everything it owns (administrators; 409 for the last "
                       "administrator)", response=None, errors=(401, 403, 404, 409, 503))
    async def delete(self, user_id: str) -> None:
        app = self.application
        with audited(self, "account_deleted", target_user_id=id_param(user_id)) as event:
            event["sessions_ended"] = await delete_account(app.db, app.accounts, user_id=id_param(user_id),
                                                           actor_id=self.current_user.user_id)
        self.send(None)

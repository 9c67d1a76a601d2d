"""Users: register, the caller's own account, and the administrators' view."""

from __future__ import annotations

from typing import Any

from server.auth import require_scopes
from server.errors import InvalidParameter
from server.handlers.base import BaseHandler, id_param
from server.openapi import operation
from server.schemas.accounts import AdminUserUpdate, MeUpdate, PageQuery, UserCreate
from server.services import page
from server.services.users import AdminUserOut, UserOut, create_user, get_user, list_users, update_user


class UsersHandler(BaseHandler):
    @operation(summary="Register a user", body=UserCreate, status=201, response=UserOut, errors=(400, 409, 503))
    async def post(self, *, body: UserCreate) -> None:
        app = self.application
        user = await create_user(app.db, email=body.email, password_hash=await app.passwords.hash(body.password),
                                 nickname=body.nickname)
        self.set_header("Location", f"/v1/users/{user.id}")
        self.send(user.public(), 201)

    @require_scopes("users:admin")
    @operation(summary="List users (administrators)", query=PageQuery, response=list[AdminUserOut], paginated=True,
               errors=(400, 401, 403, 503))
    async def get(self, *, query: PageQuery) -> None:
        users, total = await list_users(self.application.db, limit=query.limit, offset=query.offset)
        self.send([u.admin_view() for u in users], page=page(query.limit, query.offset, total))


class MeHandler(BaseHandler):
    @require_scopes("users:me")
    @operation(summary="The caller's account", response=UserOut, errors=(401, 403, 503))
    async def get(self) -> None:
        user = await get_user(self.application.db, user_id=self.current_user.user_id)
        self.send(user.public())

    @require_scopes("users:me")
    @operation(summary="Change the caller's nickname or password", body=MeUpdate, response=UserOut,
               errors=(400, 401, 403, 503))
    async def patch(self, *, body: MeUpdate) -> None:
        app = self.application
        user = await get_user(app.db, user_id=self.current_user.user_id)
        fields: dict[str, Any] = {}
        if body.nickname is not None:
            fields["nickname"] = body.nickname
        if body.password is not None:
            if not await app.passwords.verify(user.password_hash, body.current_password or ""):
                raise InvalidParameter(errors=[{"field": "current_password", "message": "does not match"}])
            fields["password_hash"] = await app.passwords.hash(body.password)
        if not fields:
            raise InvalidParameter(errors=[{"field": "body", "message": "nothing to change"}])
        async with app.db.transaction() as tx:  # the new password and the revocation: both or neither
            user = await update_user(tx, user_id=user.id, fields=fields)
            if "password_hash" in fields:
                await app.revocations.revoke_user(tx, user.id)
        self.send(user.public())


class UserHandler(BaseHandler):
    @require_scopes("users:admin")
    @operation(summary="One user (administrators)", response=AdminUserOut, errors=(401, 403, 404, 503))
    async def get(self, user_id: str) -> None:
        user = await get_user(self.application.db, user_id=id_param(user_id))
        self.send(user.admin_view())

    @require_scopes("users:admin")
    @operation(summary="Change a user's role or disable the account (administrators)", body=AdminUserUpdate,
               response=AdminUserOut, errors=(400, 401, 403, 404, 503))
    async def patch(self, user_id: str, *, body: AdminUserUpdate) -> None:
        app = self.application
        fields = body.model_dump(exclude_unset=True, exclude_none=True)
        if not fields:
            raise InvalidParameter(errors=[{"field": "body", "message": "nothing to change"}])
        if "role" in fields and not app.roles.knows(fields["role"]):
            raise InvalidParameter(errors=[{"field": "role", "message": "unknown role"}])
        if "disabled" in fields:
            fields["disabled"] = int(fields["disabled"])
        async with app.db.transaction() as tx:  # new role or disabled: earlier tokens stop, in the same write
            user = await update_user(tx, user_id=id_param(user_id), fields=fields)
            await app.revocations.revoke_user(tx, user.id)
        self.send(user.admin_view())

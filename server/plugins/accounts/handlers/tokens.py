"""POST /v1/tokens (log in), GET and DELETE /v1/tokens/current."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from server.auth import Principal, require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler
from server.plugins.accounts.models import TokenCreate
from server.plugins.accounts.services.login import login


@dataclass(slots=True)
class Token:
    token: str
    token_type: str
    expires_in: int
    scopes: list[str]


@dataclass(slots=True)
class TokenInfo:
    user_id: int
    scopes: list[str]
    issued_at: dt.datetime
    expires_at: dt.datetime


def _utc(epoch_seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).replace(tzinfo=None)


class TokensHandler(BaseHandler):
    @operation(summary="Log in: exchange e-mail and password for a bearer token", body=TokenCreate,
               status=201, response=Token, errors=(400, 401, 429, 503))
    async def post(self, *, body: TokenCreate) -> None:
        app = self.application
        issued = await login(app.db, app.accounts, account=body.account, secret=body.secret,
                             address=self.request.remote_ip or "")
        self.send(Token(issued.token, "Bearer", app.config.token_expiration, sorted(issued.principal.scopes)), 201)


class CurrentTokenHandler(BaseHandler):
    @require_scopes()
    @operation(summary="Describe the token of this request", response=TokenInfo, errors=(401, 503))
    async def get(self) -> None:
        p: Principal = self.current_user
        self.send(TokenInfo(p.user_id, sorted(p.scopes), _utc(p.issued_at_ms / 1000), _utc(p.expires_at)))

    @require_scopes()
    @operation(summary="Revoke the token of this request (log out)", response=None, errors=(401, 503))
    async def delete(self) -> None:
        await self.application.revocations.revoke_token(self.application.db, self.current_user)
        self.send(None)

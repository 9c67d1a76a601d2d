"""POST /v1/tokens (log in), POST /v1/tokens/refresh (rotate), GET and DELETE /v1/tokens/current.

Answers carrying tokens are never stored by caches (Cache-Control: no-store)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from server.auth import Principal, require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler
from server.plugins.accounts.models import RefreshCreate, TokenCreate
from server.plugins.accounts.services.login import login
from server.plugins.accounts.services.sessions import TokenPair, log_out, refresh_session
from server.security_events import audited


@dataclass(slots=True)
class Token:
    token: str
    token_type: str
    expires_in: int
    scopes: list[str]
    refresh_token: str
    refresh_expires_in: int


@dataclass(slots=True)
class TokenInfo:
    user_id: int
    scopes: list[str]
    issued_at: dt.datetime
    expires_at: dt.datetime


def _utc(epoch_seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).replace(tzinfo=None)


class TokenPairHandler(BaseHandler):
    def send_pair(self, pair: TokenPair) -> None:
        """The token answer, kept out of every cache."""
        access = pair.access
        self.set_header("Cache-Control", "no-store")
        self.set_header("Pragma", "no-cache")
        self.send(Token(access.token, "Bearer", self.application.config.token_expiration,
                        sorted(access.principal.scopes), pair.refresh_token, pair.refresh_expires_in), 201)


class TokensHandler(TokenPairHandler):
    @operation(summary="Log in: exchange e-mail and password for a bearer token and a refresh token (a new "
                       "session)", body=TokenCreate, status=201, response=Token, errors=(400, 401, 429, 503))
    async def post(self, *, body: TokenCreate) -> None:
        app = self.application
        with audited(self, "login") as event:
            pair = await login(app.db, app.accounts, account=body.account, secret=body.secret,
                               address=self.request.remote_ip or "",
                               user_agent=self.request.headers.get("User-Agent"), otp=body.otp)
            event["user_id"] = pair.access.principal.user_id
        self.send_pair(pair)


class RefreshHandler(TokenPairHandler):
    @operation(summary="Exchange a refresh token for a new pair; the one sent is used up, and sending a used "
                       "one again ends its session (401/10033)", body=RefreshCreate, status=201, response=Token,
               errors=(400, 401, 503))
    async def post(self, *, body: RefreshCreate) -> None:
        app = self.application
        with audited(self, "token_refreshed") as event:
            pair = await refresh_session(app.db, app.accounts, refresh_token=body.refresh_token)
            event["user_id"] = pair.access.principal.user_id
        self.send_pair(pair)


class CurrentTokenHandler(BaseHandler):
    @require_scopes()
    @operation(summary="Describe the token of this request", response=TokenInfo, errors=(401, 503))
    async def get(self) -> None:
        p: Principal = self.current_user
        self.send(TokenInfo(p.user_id, sorted(p.scopes), _utc(p.issued_at_ms / 1000), _utc(p.expires_at)))

    @require_scopes()
    @operation(summary="Log out: revoke the token of this request and end its session (its refresh token too)",
               response=None, errors=(401, 503))
    async def delete(self) -> None:
        app = self.application
        with audited(self, "logged_out", session_id=self.current_user.session_id):
            await log_out(app.db, app.accounts, user=self.current_user)
        self.send(None)

"""GET and DELETE /v1/sessions (the caller's devices), DELETE /v1/sessions/{id}."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler, id_param
from server.plugins.accounts.models import OthersQuery
from server.plugins.accounts.services.sessions import SessionOut, end_other_sessions, end_own_session, list_sessions
from server.security_events import audited


@dataclass(slots=True)
class SessionsEnded:
    sessions_ended: int


class SessionsHandler(BaseHandler):
    @require_scopes("users:me")
    @operation(summary="The caller's open sessions (one per login), newest first", response=list[SessionOut],
               errors=(401, 403, 503))
    async def get(self) -> None:
        app = self.application
        self.send(await list_sessions(app.db, app.accounts, user=self.current_user))

    @require_scopes("users:me")
    @operation(summary="End every session of the caller but the current one (others=true)", query=OthersQuery,
               response=SessionsEnded, errors=(400, 401, 403, 503))
    async def delete(self, *, query: OthersQuery) -> None:
        app = self.application
        with audited(self, "other_sessions_ended") as event:
            ended = event["sessions_ended"] = await end_other_sessions(app.db, app.accounts, user=self.current_user)
        self.send(SessionsEnded(ended))


class SessionHandler(BaseHandler):
    @require_scopes("users:me")
    @operation(summary="End one of the caller's sessions: its access and refresh tokens stop working",
               response=None, errors=(401, 403, 404, 503))
    async def delete(self, session_id: str) -> None:
        app = self.application
        with audited(self, "session_ended", session_id=id_param(session_id)) as event:
            await end_own_session(app.db, app.accounts, user=self.current_user, session_id=event["session_id"])
        self.send(None)

"""Two-factor authentication of the caller's account: POST /v1/users/me/mfa (enroll: the secret, once),
POST /v1/users/me/mfa/confirm (a code turns it on: the recovery codes, once), DELETE /v1/users/me/mfa (off).
Answers holding a secret are never cached (Cache-Control: no-store)."""

from __future__ import annotations

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler
from server.plugins.accounts.models import MfaConfirm, MfaCreate, MfaDelete
from server.plugins.accounts.services.mfa import (
    Enrollment,
    RecoveryCodes,
    confirm_enrollment,
    disable,
    start_enrollment,
)
from server.security_events import audited


class MfaHandler(BaseHandler):
    @require_scopes("users:me")
    @operation(summary="Start two-factor authentication (TOTP): the password again; answers the secret and its "
                       "otpauth:// URI once (a pending one is replaced; 409 when it is on already)", body=MfaCreate,
               status=201, response=Enrollment, errors=(400, 401, 403, 409, 429, 503))
    async def post(self, *, body: MfaCreate) -> None:
        app = self.application
        with audited(self, "mfa_enrollment_started"):
            enrollment = await start_enrollment(app.db, app.accounts, user_id=self.current_user.user_id,
                                                password=body.password, address=self.request.remote_ip or "")
        self.set_header("Cache-Control", "no-store")
        self.send(enrollment, 201)

    @require_scopes("users:me")
    @operation(summary="Turn two-factor authentication off: the password (403/1004) and a code or recovery code "
                       "(401/10034)", body=MfaDelete, response=None, errors=(400, 401, 403, 429, 503))
    async def delete(self, *, body: MfaDelete) -> None:
        app = self.application
        with audited(self, "mfa_disabled"):
            await disable(app.db, app.accounts, user_id=self.current_user.user_id, password=body.password,
                          code=body.code, address=self.request.remote_ip or "")
        self.send(None)


class MfaConfirmHandler(BaseHandler):
    @require_scopes("users:me")
    @operation(summary="Turn two-factor authentication on with a code of the new secret; answers ten single-use "
                       "recovery codes, once (logins then need a code: POST /v1/tokens `otp`)", body=MfaConfirm,
               response=RecoveryCodes, errors=(400, 401, 403, 409, 503))
    async def post(self, *, body: MfaConfirm) -> None:
        with audited(self, "mfa_enabled"):
            codes = await confirm_enrollment(self.application.db, user_id=self.current_user.user_id, code=body.code)
        self.set_header("Cache-Control", "no-store")
        self.send(codes)

"""Password reset (POST /v1/password-resets, .../confirm) and e-mail verification (POST
/v1/users/me/email-verification, POST /v1/email-verifications/confirm)."""

from __future__ import annotations

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler
from server.plugins.accounts.models import EmailVerificationConfirm, PasswordResetConfirm, PasswordResetCreate
from server.plugins.accounts.services.recovery import (
    confirm_email,
    confirm_password_reset,
    request_password_reset,
    send_verification,
)
from server.plugins.accounts.services.users import UserOut
from server.security_events import audited


class PasswordResetsHandler(BaseHandler):
    @operation(summary="Ask for a password-reset message: 202 whether or not the account exists",
               body=PasswordResetCreate, status=202, response=None, errors=(400, 429, 503))
    async def post(self, *, body: PasswordResetCreate) -> None:
        app = self.application
        with audited(self, "password_reset_requested"):
            await request_password_reset(app.db, app.accounts, email=body.email, address=self.request.remote_ip or "")
        self.send(None, 202)


class PasswordResetConfirmHandler(BaseHandler):
    @operation(summary="Set a new password with a reset token: every session ends, the token and the account's "
                       "other reset tokens stop working (401/10031 unknown or used token, 10032 expired)",
               body=PasswordResetConfirm, response=UserOut, errors=(400, 401, 503))
    async def post(self, *, body: PasswordResetConfirm) -> None:
        app = self.application
        with audited(self, "password_reset_confirmed") as event:
            user = await confirm_password_reset(app.db, app.accounts, token=body.token, password=body.password)
            event["user_id"] = user.id
        self.send(user.public())


class EmailVerificationHandler(BaseHandler):
    @require_scopes("users:me")
    @operation(summary="Send the e-mail verification message again", status=202, response=None,
               errors=(401, 403, 409, 429, 503))
    async def post(self) -> None:
        app = self.application
        with audited(self, "email_verification_sent"):
            await send_verification(app.db, app.accounts, user_id=self.current_user.user_id,
                                    address=self.request.remote_ip or "")
        self.send(None, 202)


class EmailVerificationConfirmHandler(BaseHandler):
    @operation(summary="Confirm an e-mail address with the token of its verification message (refresh the "
                       "token pair afterwards for the scopes of a verified account; 401/10031 unknown or used, "
                       "10032 expired)", body=EmailVerificationConfirm, response=UserOut, errors=(400, 401, 503))
    async def post(self, *, body: EmailVerificationConfirm) -> None:
        app = self.application
        with audited(self, "email_verified") as event:
            user = await confirm_email(app.db, app.accounts, token=body.token)
            event["user_id"] = user.id
        self.send(user.public())

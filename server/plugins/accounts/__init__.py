"""Accounts: users and tokens."""

import logging
from typing import Any

from server import periodic
from server.db import Executor
from server.plugins import Plugin, Route
from server.plugins.accounts.handlers.mfa import MfaConfirmHandler, MfaHandler
from server.plugins.accounts.handlers.recovery import (
    EmailVerificationConfirmHandler,
    EmailVerificationHandler,
    PasswordResetConfirmHandler,
    PasswordResetsHandler,
)
from server.plugins.accounts.handlers.sessions import SessionHandler, SessionsHandler
from server.plugins.accounts.handlers.tokens import CurrentTokenHandler, RefreshHandler, TokensHandler
from server.plugins.accounts.handlers.users import ExportHandler, MeHandler, UserHandler, UsersHandler
from server.plugins.accounts.services.accounts import Accounts, LoginLimits
from server.plugins.accounts.services.export import export_account
from server.plugins.accounts.services.mail import MailSender
from server.plugins.accounts.services.purge import purge_accounts
from server.plugins.accounts.services.users import backfill_email_skeletons
from server.plugins.accounts.settings import AccountsSettings


def _setup(app: Any) -> None:
    app.accounts = Accounts(app.passwords, app.tokens, app.roles, app.revocations, LoginLimits.from_config(app.config),
                            app.changes, app.plugin_settings["accounts"])
    app.mail_sender = MailSender(app.plugin_settings["accounts"])


log = logging.getLogger("pet_api.accounts")


async def _key_accounts(db: Executor) -> list[tuple[int, str]]:
    """Give the accounts without one their look-alike key (accounts 0005): what was done, as (log level, line)."""
    done, lookalikes = await backfill_email_skeletons(db)
    report = []
    if done:
        report.append((logging.INFO, f"look-alike keys set for {done} account{'s' if done != 1 else ''}"))
    if lookalikes:  # ids only: logs carry no e-mail addresses
        report.append((logging.WARNING, f"accounts {lookalikes} are look-alikes of older accounts, registered before"
                                        " the rule: they keep working; see docs/security.md"))
    return report


async def _after_migrate(db: Executor) -> list[str]:
    """`main.py migrate` keys the accounts, so that a large deployment's first start after accounts 0005 does not
    have to within systemd's start timeout (~11,000 accounts a second)."""
    return [line for _, line in await _key_accounts(db)]


async def _start(app: Any) -> None:
    for level, line in await _key_accounts(app.db):  # rows an older instance wrote since (a rolling update)
        log.log(level, line)
    app.mail_sender.start(app.db)
    settings = app.plugin_settings["accounts"]
    app.accounts_purge = periodic.start_every(lambda: settings.purge_interval_seconds,
                                              lambda: purge_accounts(app.db, settings),
                                              periodic.warn_failed(log, "accounts purge"))


async def _stop(app: Any) -> None:
    await periodic.stop(app.accounts_purge)
    await app.mail_sender.stop()


PLUGIN = Plugin(
    name="accounts",
    routes=[
        Route("/v1/users", UsersHandler),
        Route("/v1/users/me", MeHandler),
        Route("/v1/users/me/export", ExportHandler),
        Route("/v1/users/me/mfa", MfaHandler),
        Route("/v1/users/me/mfa/confirm", MfaConfirmHandler),
        Route("/v1/users/{user_id}", UserHandler),
        Route("/v1/tokens", TokensHandler),
        Route("/v1/tokens/current", CurrentTokenHandler),
        Route("/v1/tokens/refresh", RefreshHandler),
        Route("/v1/sessions", SessionsHandler),
        Route("/v1/sessions/{session_id}", SessionHandler),
        Route("/v1/password-resets", PasswordResetsHandler),
        Route("/v1/password-resets/confirm", PasswordResetConfirmHandler),
        Route("/v1/users/me/email-verification", EmailVerificationHandler),
        Route("/v1/email-verifications/confirm", EmailVerificationConfirmHandler),
    ],
    setup=_setup,
    on_start=_start,
    on_stop=_stop,
    export=export_account,
    export_sections=("account", "sessions"),
    after_migrate=_after_migrate,
    settings=AccountsSettings,
    scopes={"users:me": "read and change one's own account", "users:admin": "list, read and change every account"},
)

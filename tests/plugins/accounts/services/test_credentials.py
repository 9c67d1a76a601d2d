"""Credential changes through the service, on MariaDB and SQLite: which ones revoke the earlier tokens."""

import asyncio
import datetime as dt
import functools
import subprocess
import sys

import pytest

from server.errors import InvalidParameter
from server.plugins.accounts.services.credentials import (
    LOOKALIKE,
    change_own_account,
    create_or_promote_admin,
    set_role_or_disabled,
)
from server.plugins.accounts.services.users import get_user
from tests.factories import PASSWORD, create_user, revoked_elsewhere
from tests.processes import ROOT, clean_env

pytestmark = pytest.mark.parametrize("backend", ["mysql", "sqlite"], indirect=True)


@pytest.mark.gen_test
async def test_a_new_password_revokes_earlier_tokens_and_a_new_nickname_does_not(app):
    user = await create_user(app)
    earlier = app.tokens.issue(user.id, []).principal
    renamed = await change_own_account(app.db, app.accounts, user_id=user.id, nickname="Neo", password=None,
                                       current_password=None, address="127.0.0.1")
    assert (renamed.user.nickname, renamed.user.password_hash, renamed.changed) == (
        "Neo", user.password_hash, {"nickname"})
    again = await change_own_account(app.db, app.accounts, user_id=user.id, nickname="Neo", password=None,
                                     current_password=None, address="127.0.0.1")
    assert (again.user, again.changed) == (renamed.user, frozenset())  # the nickname it has: nothing written
    assert not await revoked_elsewhere(app, earlier)
    with pytest.raises(InvalidParameter) as wrong:
        await change_own_account(app.db, app.accounts, user_id=user.id, nickname=None, password="new-password-1",
                                 current_password="not-the-password", address="127.0.0.1")
    assert wrong.value.errors == [{"field": "current_password", "message": "does not match"}]
    assert not await revoked_elsewhere(app, earlier)

    change = await change_own_account(app.db, app.accounts, user_id=user.id, nickname=None,
                                      password="new-password-1", current_password=PASSWORD, address="127.0.0.1")
    assert (change.sessions_ended, change.changed) == (0, {"password_hash"})
    assert await app.passwords.verify(change.user.password_hash, "new-password-1")
    assert await revoked_elsewhere(app, earlier)


@pytest.mark.gen_test
async def test_a_role_or_disabled_change_revokes_and_an_unknown_role_changes_nothing(app):
    user = await create_user(app)
    earlier = app.tokens.issue(user.id, []).principal
    with pytest.raises(InvalidParameter) as unknown:
        await set_role_or_disabled(app.db, app.accounts, user_id=user.id, role="wizard", disabled=True, actor_id=None)
    assert unknown.value.errors == [{"field": "role", "message": "unknown role"}]
    for role, disabled in ((None, None), ("user", None), ("user", False), (None, False)):  # the account's own
        same = await set_role_or_disabled(app.db, app.accounts, user_id=user.id, role=role, disabled=disabled,
                                          actor_id=None)
        assert (same.user.role, same.user.disabled, same.changed, same.sessions_ended) == ("user", False, set(), 0)
    assert not await revoked_elsewhere(app, earlier)

    disabled = await set_role_or_disabled(app.db, app.accounts, user_id=user.id, role="admin", disabled=True,
                                          actor_id=None)
    assert (disabled.user.role, disabled.user.disabled, disabled.changed) == ("admin", True, {"role", "disabled"})
    assert await revoked_elsewhere(app, earlier)


@pytest.mark.gen_test
async def test_create_or_promote_admin_creates_then_promotes_revoking_earlier_tokens(app):
    created, is_new = await create_or_promote_admin(app.db, app.accounts, email="Boss@Example.com", nickname="boss",
                                                    password="admin-password")
    assert (is_new, created.email, created.role, created.disabled) == (True, "boss@example.com", "admin", False)

    user = await create_user(app, disabled=True)
    earlier = app.tokens.issue(user.id, []).principal
    promoted, is_new = await create_or_promote_admin(app.db, app.accounts, email=user.email.upper(), nickname="x",
                                                     password="admin-password")
    assert (is_new, promoted.id, promoted.role, promoted.disabled, promoted.nickname) == (
        False, user.id, "admin", False, user.nickname)
    assert await app.passwords.verify((await get_user(app.db, user_id=user.id)).password_hash, "admin-password")
    assert await revoked_elsewhere(app, earlier)


@pytest.mark.gen_test
async def test_create_admin_refuses_a_lookalike_of_an_existing_account_naming_the_email(app):
    user = await create_user(app, email="ops@example.com")
    with pytest.raises(InvalidParameter) as caught:
        await create_or_promote_admin(app.db, app.accounts, email="\u043eps@example.com",  # Cyrillic 'о'
                                      nickname="boss", password="admin-password")
    assert [e["field"] for e in caught.value.errors or []] == ["email"]
    assert "looks like an existing account's e-mail" in caught.value.errors[0]["message"]
    kept = await get_user(app.db, user_id=user.id)
    assert (kept.role, kept.password_hash) == ("user", user.password_hash)  # neither promoted nor changed


@pytest.mark.gen_test(timeout=90)
async def test_main_create_admin_with_a_lookalike_says_so_and_exits_2(app):
    user = await create_user(app, email="root@example.com")
    env = clean_env(PET_API_DATABASE_URL=app.config.database_url, PET_API_ADMIN_PASSWORD="rotated-secret-42")
    command = [sys.executable, "main.py", "create-admin", "--env=test", "--email", "r\u043e\u043et@example.com"]
    run = functools.partial(subprocess.run, command, cwd=ROOT, env=env, text=True, capture_output=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    result = await asyncio.get_running_loop().run_in_executor(None, run)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == f"create-admin: email: {LOOKALIKE}\n"
    kept = await get_user(app.db, user_id=user.id)
    assert (kept.role, kept.password_hash) == ("user", user.password_hash)


@pytest.mark.gen_test
async def test_two_logins_stamping_the_same_instant_both_start_a_session(app, monkeypatch):
    # A login holds its checked credentials by writing the account's updated_at; MariaDB counts changed rows, so
    # a second login stamping the very microsecond the first one did changed nothing and was refused as "the
    # credentials changed meanwhile" (401 to a right password). Two workers can read the same clock value.
    from server.plugins.accounts.services import credentials
    from server.plugins.accounts.services.login import login

    user = await create_user(app)
    instant = dt.datetime(2026, 12, 8, 1, 2, 3, 456789)
    monkeypatch.setattr(credentials, "utcnow", lambda: instant)
    sessions = [await login(app.db, app.accounts, account=user.email, secret=PASSWORD, address="127.0.0.1")
                for _ in range(3)]
    assert len({pair.refresh_token for pair in sessions}) == 3
    assert [app.tokens.verify(pair.access.token).user_id for pair in sessions] == [user.id] * 3
    assert len({app.tokens.verify(pair.access.token).session_id for pair in sessions}) == 3

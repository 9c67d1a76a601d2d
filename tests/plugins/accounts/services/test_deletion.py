"""Deleting accounts through the service, on MariaDB and SQLite: the last active administrator stays, also when
two administrators delete (or delete and demote) each other at once, each on its own connection."""

import asyncio
from collections.abc import Awaitable

import pytest

from server.errors import Conflict, NotFound
from server.plugins.accounts.services.credentials import set_role_or_disabled
from server.plugins.accounts.services.deletion import delete_account
from server.plugins.accounts.services.users import User, get_user
from tests.factories import create_user

pytestmark = pytest.mark.parametrize("backend", ["mysql", "sqlite"], indirect=True)
ROUNDS = 6
LAST_DELETED = "the last administrator account cannot be deleted"
LAST_DEMOTED = "the last active administrator cannot be demoted or disabled"


async def two_admins_only(app) -> tuple[User, User]:
    """Two fresh administrators, the only active ones in the database."""
    first, second = await create_user(app, role="admin"), await create_user(app, role="admin")
    await app.db.execute("UPDATE users SET role = 'user' WHERE role = 'admin' AND id NOT IN (%s, %s)",
                         (first.id, second.id))
    return first, second


async def active_admins(app) -> list[int]:
    return [int(row[0]) for row in await app.db.fetch_all("SELECT id FROM users WHERE role = 'admin' AND disabled = 0")]


@pytest.mark.gen_test(timeout=120)
async def test_two_admins_deleting_each_other_at_once_leave_one_admin(app):
    # InnoDB's REPEATABLE READ: the delete read the account before the check, which fixed its snapshot; the check's
    # read then still saw both administrators after waiting for the other delete's commit, and both went through.
    for round_ in range(ROUNDS):
        first, second = await two_admins_only(app)
        deletes: list[Awaitable[None]] = [
            delete_account(app.db, app.accounts, user_id=second.id, actor_id=first.id),
            delete_account(app.db, app.accounts, user_id=first.id, actor_id=second.id)]
        if round_ % 2:  # both orders of starting
            deletes.reverse()
        answers = await asyncio.gather(*deletes, return_exceptions=True)
        refused = [a for a in answers if isinstance(a, BaseException)]
        assert len(refused) == 1 and 0 in answers, answers  # no session was open
        assert isinstance(refused[0], Conflict), refused
        assert (refused[0].code, refused[0].detail) == (1005, LAST_DELETED)
        assert len(await active_admins(app)) == 1


@pytest.mark.gen_test(timeout=120)
async def test_an_admin_deleting_another_while_that_one_demotes_it_leaves_one_admin(app):
    for round_ in range(ROUNDS):
        first, second = await two_admins_only(app)
        changes: list[Awaitable[object]] = [
            delete_account(app.db, app.accounts, user_id=second.id, actor_id=first.id),
            set_role_or_disabled(app.db, app.accounts, user_id=first.id, role="user", disabled=None,
                                 actor_id=second.id)]
        if round_ % 2:
            changes.reverse()
        answers = await asyncio.gather(*changes, return_exceptions=True)
        refused = [a for a in answers if isinstance(a, BaseException)]
        assert len(refused) == 1, answers
        assert isinstance(refused[0], Conflict) and refused[0].code == 1005, refused
        assert refused[0].detail in (LAST_DELETED, LAST_DEMOTED)
        assert len(await active_admins(app)) == 1


@pytest.mark.gen_test
async def test_deleting_a_missing_account_is_404_and_the_last_admin_409(app):
    admin, other = await two_admins_only(app)
    with pytest.raises(NotFound):
        await delete_account(app.db, app.accounts, user_id=admin.id + 10_000, actor_id=admin.id)
    await delete_account(app.db, app.accounts, user_id=other.id, actor_id=admin.id)
    with pytest.raises(Conflict) as last:
        await delete_account(app.db, app.accounts, user_id=admin.id, actor_id=admin.id)
    assert last.value.detail == LAST_DELETED
    assert (await get_user(app.db, user_id=admin.id)).role == "admin"

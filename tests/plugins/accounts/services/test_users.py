"""User rows through the service functions, on MariaDB and SQLite."""

import datetime as dt

import pytest

from server.errors import Conflict, NotFound
from server.plugins.accounts.services.users import create_user, find_user_by_email, get_user, list_users, update_user
from tests.factories import both_backends

pytestmark = both_backends


@pytest.mark.gen_test
async def test_create_then_find_case_insensitively(app):
    user = await create_user(app.db, email="Zed@Example.COM", password_hash="h", nickname="Zed")
    assert (user.email, user.role, user.disabled) == ("zed@example.com", "user", False)
    found = await find_user_by_email(app.db, email="  zed@EXAMPLE.com ")
    assert found is not None
    assert (found.id, found.email, found.password_hash, found.nickname) == (user.id, "zed@example.com", "h", "Zed")
    assert isinstance(found.created_at, dt.datetime)
    assert abs((found.created_at - user.created_at).total_seconds()) < 0.001
    assert await find_user_by_email(app.db, email="nobody@example.com") is None


@pytest.mark.gen_test
async def test_a_taken_email_is_a_conflict(app):
    await create_user(app.db, email="dup@example.com", password_hash="h", nickname="a")
    with pytest.raises(Conflict) as caught:
        await create_user(app.db, email="DUP@example.com", password_hash="h", nickname="b")
    assert caught.value.code == 1005


@pytest.mark.gen_test
async def test_public_views_never_carry_the_hash(app):
    user = await create_user(app.db, email="v@example.com", password_hash="$argon2id$secret", nickname="v")
    assert not hasattr(user.public(), "password_hash")
    assert not hasattr(user.admin_view(), "password_hash")
    assert user.admin_view().disabled is False


@pytest.mark.gen_test
async def test_update_sets_only_updatable_columns(app):
    user = await create_user(app.db, email="u@example.com", password_hash="h", nickname="u")
    updated = await update_user(app.db, user_id=user.id, fields={"role": "admin", "disabled": 1, "nickname": "U"})
    assert (updated.role, updated.disabled, updated.nickname) == ("admin", True, "U")
    with pytest.raises(ValueError, match="email"):
        await update_user(app.db, user_id=user.id, fields={"email": "x@example.com"})
    with pytest.raises(NotFound):
        await update_user(app.db, user_id=user.id + 999, fields={"nickname": "x"})
    with pytest.raises(NotFound):
        await get_user(app.db, user_id=user.id + 999)


@pytest.mark.gen_test
async def test_list_pages_in_id_order_with_the_total(app):
    ids = [(await create_user(app.db, email=f"l{i}@example.com", password_hash="h", nickname="l")).id
           for i in range(5)]
    page, total, _ = await list_users(app.db, limit=2, offset=2)
    assert total == 5
    assert [u.id for u in page] == ids[2:4]
    empty, total, _ = await list_users(app.db, limit=2, offset=10)
    assert (empty, total) == ([], 5)

"""User rows through the service functions, on MariaDB and SQLite."""

import asyncio
import datetime as dt
import logging

import pytest

from server import make_app
from server.errors import Conflict, NotFound
from server.plugins.accounts.lookalikes import email_skeleton
from server.plugins.accounts.services.users import (
    backfill_email_skeletons,
    create_user,
    find_user_by_email,
    get_user,
    list_users,
    update_user,
)
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


@pytest.mark.gen_test
async def test_a_lookalike_email_is_the_same_conflict_as_the_email(app):
    await create_user(app.db, email="eve@example.com", password_hash="h", nickname="a")
    for email in ("ｅｖｅ@example.com", "\u0435ve@example.com", "EVE@EX\u0410MPLE.COM"):  # Cyrillic 'е', 'А'
        with pytest.raises(Conflict) as caught:
            await create_user(app.db, email=email, password_hash="h", nickname="b")
        assert (caught.value.code, str(caught.value)) == (1005, "the e-mail is already registered")


async def _old_row(app, email: str) -> int:
    """A user as an instance before accounts 0005 wrote it: no email_skeleton."""
    await app.db.execute("INSERT INTO users (email, password_hash, nickname, created_at, updated_at)"
                         " VALUES (%s, 'h', 'old', '2026-01-02 03:04:05', '2026-01-02 03:04:05')", (email,))
    row = await app.db.fetch_one("SELECT id FROM users WHERE email = %s", (email,))
    return int(row[0])


@pytest.mark.gen_test
async def test_backfill_keys_old_rows_oldest_first_and_leaves_earlier_lookalikes_working(app):
    first = await _old_row(app, "ann@example.com")
    twin = await _old_row(app, "\u0430nn@example.com")  # registered before the rule: a Cyrillic 'а'
    other = await _old_row(app, "ben@example.com")
    done, lookalikes = await backfill_email_skeletons(app.db, batch=2)  # two pages
    assert (done, lookalikes) == (2, [twin])
    keys = {int(r[0]): r[1] for r in await app.db.fetch_all("SELECT id, email_skeleton FROM users")}
    assert (keys[first], keys[twin], keys[other]) == (email_skeleton("ann@example.com"), None,
                                                      email_skeleton("ben@example.com"))
    assert (await find_user_by_email(app.db, email="\u0430nn@example.com")).id == twin  # still its account
    with pytest.raises(Conflict):  # the key the older account holds covers both spellings
        await create_user(app.db, email="ＡＮＮ@example.com", password_hash="h", nickname="c")
    assert await backfill_email_skeletons(app.db) == (0, [twin])  # reported again, changed nothing


@pytest.mark.gen_test
async def test_two_workers_keying_at_once_set_each_key_once(app):
    ids = [await _old_row(app, f"w{n}@example.com") for n in range(7)]
    twin = await _old_row(app, "ｗ3@example.com")
    first, second = await asyncio.gather(backfill_email_skeletons(app.db, batch=3),
                                         backfill_email_skeletons(app.db, batch=3))
    assert first[0] + second[0] == 7 and twin in first[1] + second[1], (first, second)
    keys = {int(r[0]): r[1] for r in await app.db.fetch_all("SELECT id, email_skeleton FROM users")}
    assert [keys[i] for i in ids] == [email_skeleton(f"w{n}@example.com") for n in range(7)]
    assert keys[twin] is None


@pytest.mark.gen_test
async def test_the_accounts_plugin_keys_old_rows_at_start_and_reports_earlier_lookalikes(app, config, caplog):
    user_id = await _old_row(app, "cy@example.com")
    twin = await _old_row(app, "\u0441y@example.com")  # a Cyrillic 'с'
    another = make_app(config)  # a second instance starting on the same database, as after `main.py migrate`
    with caplog.at_level(logging.INFO, logger="pet_api.accounts"):
        await another.startup()
    try:
        row = await app.db.fetch_one("SELECT email_skeleton FROM users WHERE id = %s", (user_id,))
        assert row[0] == email_skeleton("cy@example.com")
        messages = [r.getMessage() for r in caplog.records if r.name == "pet_api.accounts"]
        assert "look-alike keys set for 1 account" in messages, messages
        warned = [m for m in messages if m.startswith(f"accounts [{twin}] are look-alikes of older accounts")]
        assert warned and "@" not in warned[0], messages  # ids only, no address in the log
    finally:
        await another.shutdown()

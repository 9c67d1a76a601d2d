"""Pet rows through the service functions, on MariaDB and SQLite: the search keys of rows written before pets 0004."""

import logging

import pytest

from server import make_app
from server.plugins.pets.pet import search_key
from server.plugins.pets.services import backfill_name_keys
from tests.factories import both_backends, create_pet, user_with_token

pytestmark = both_backends


async def _old_pet(app, owner_id: int, name: str) -> int:
    """A pet as an instance before pets 0004 wrote it: no name_key."""
    await app.db.execute("INSERT INTO pets (owner_id, name, species, created_at, updated_at)"
                         " VALUES (%s, %s, 'dog', '2026-01-02 03:04:05', '2026-01-02 03:04:05')", (owner_id, name))
    row = await app.db.fetch_one("SELECT MAX(id) FROM pets")
    await app.db.execute("INSERT INTO pet_members (pet_id, user_id, role, since)"
                         " VALUES (%s, %s, 'owner', '2026-01-02 03:04:05')", (row[0], owner_id))
    return int(row[0])


async def _keys(app) -> dict[int, str | None]:
    return {int(r[0]): r[1] for r in await app.db.fetch_all("SELECT id, name_key FROM pets")}


@pytest.mark.gen_test(timeout=30)
async def test_backfill_keys_old_rows_so_q_finds_them_and_leaves_keyed_ones(app, api):
    user, token = await user_with_token(app)
    keyed = (await create_pet(api, token, name="ΟΔΟΣ"))["id"]
    old = [await _old_pet(app, user.id, name) for name in ("Émile", "İpek", "ẞig")]
    assert (await api.get("/v1/pets?q=%C3%A9mile", token=token)).body["data"] == []  # not keyed yet
    assert await backfill_name_keys(app.db, batch=2) == 3  # two pages
    assert await _keys(app) == {keyed: "οδοσ", old[0]: "émile", old[1]: "i\u0307pek", old[2]: "ssig"}
    found = await api.get("/v1/pets?q=%C3%A9mile", token=token)  # émile
    assert (found.status, [p["id"] for p in found.body["data"]]) == (200, [old[0]])
    assert await backfill_name_keys(app.db) == 0  # nothing left: changes nothing


@pytest.mark.gen_test(timeout=30)
async def test_the_pets_plugin_keys_old_rows_at_start(app, config, caplog):
    user, _ = await user_with_token(app)
    pet_id = await _old_pet(app, user.id, "ΣΟΦΙΑ")
    another = make_app(config)  # a second instance starting on the same database, as after `main.py migrate`
    with caplog.at_level(logging.INFO, logger="pet_api.pets"):
        await another.startup()
    try:
        assert (await _keys(app))[pet_id] == search_key("σοφια") == "σοφια"
        assert "search keys set for 1 pet" in [r.getMessage() for r in caplog.records if r.name == "pet_api.pets"]
    finally:
        await another.shutdown()

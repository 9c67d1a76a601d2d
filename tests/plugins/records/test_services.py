"""Record rows through the service functions, on MariaDB and SQLite: values and dates read back exactly."""

import datetime as dt

import pytest

from server.plugins.accounts.services.users import create_user
from server.plugins.pets.models import PetCreate
from server.plugins.pets.services import create_pet
from server.plugins.records.models import RecordCreate, RecordListQuery
from server.plugins.records.services import create_record, get_record, list_records

pytestmark = pytest.mark.parametrize("backend", ["mysql", "sqlite"], indirect=True)


@pytest.mark.gen_test
async def test_values_keep_every_digit_and_stay_floats(app):
    owner = await create_user(app.db, email="rec@example.com", password_hash="h", nickname="r")
    pet = await create_pet(app.db, app.changes, owner_id=owner.id, fields=PetCreate(name="Rex", species="dog"))
    values = [0.1 + 0.2, 123456789.12345679, 3.0, 0.0, None]
    created = [await create_record(app.db, app.changes, pet_id=pet.id, actor_id=owner.id, fields=RecordCreate(
        kind="weight", date=dt.date(2024, 3, 1 + n), value=value)) for n, value in enumerate(values)]
    records, total, _ = await list_records(app.db, pet_id=pet.id, query=RecordListQuery(limit=10))
    assert total == len(values)
    assert [(r.id, r.value, type(r.value)) for r in records] == [
        (c.id, v, type(v)) for c, v in reversed(list(zip(created, values, strict=True)))]
    one = await get_record(app.db, pet_id=pet.id, record_id=created[0].id)
    assert (one.value, one.date, one.created_at) == (0.1 + 0.2, dt.date(2024, 3, 1), created[0].created_at)
    past_the_end = await list_records(app.db, pet_id=pet.id, query=RecordListQuery(limit=10, offset=10))
    assert past_the_end == ([], len(values), None)

"""What reading a member's pets costs MariaDB: their memberships, then each of those pets by its key, whatever the
deployment holds. Measured with ANALYZE (the rows each table really gave, over all its loops) on bench/seed.py's
1,000 pets plus a caller shaped like bench growth's: 200 pets of their own (one in 7 pending) and 20 shared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from bench.seed import seed
from server.db.dialect import MYSQL
from server.plugins.pets.access import member_join
from tests.conftest import migrated_database
from tests.mariadb_server import connect_database

OWN, SHARED = 200, 20


@pytest.fixture(scope="module")
def deployment(mysql_server_url: str) -> Iterator[tuple[pymysql.Connection, int]]:
    """(a connection to the seeded database, the caller's user id)."""
    name = "pet_api_access_cost"
    conn = connect_database(migrated_database(mysql_server_url, name))
    shape = seed(conn, 1000, records_per_pet=0)
    caller, first = shape.users + 1, shape.pets + 1
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (id, email, password_hash, nickname, role, disabled, created_at, updated_at)"
                    " VALUES (%s, 'caller@cost.example', '!', 'caller', 'user', 0, NOW(6), NOW(6))", (caller,))
        cur.execute("INSERT INTO pets (id, owner_id, name, species, sex, status, created_at, updated_at, version)"
                    " SELECT %s + seq - 1, %s, CONCAT('Own ', seq), 'cat', 'unknown',"
                    " IF(seq MOD 7 = 0, 'pending', 'available'), NOW(6), NOW(6), 1 FROM seq_1_to_200",
                    (first, caller))
        cur.execute("INSERT INTO pet_members (pet_id, user_id, role, since) SELECT id, owner_id, 'owner', NOW(6)"
                    " FROM pets WHERE owner_id = %s", (caller,))
        cur.execute("INSERT INTO pet_members (pet_id, user_id, role, since) SELECT seq * 50, %s, 'caretaker', NOW(6)"
                    " FROM seq_1_to_20", (caller,))
        cur.execute("ANALYZE TABLE pets, pet_members")
        cur.fetchall()
    yield conn, caller
    conn.close()


def _rows_read(plan: Any) -> float:
    """Rows the tables of an ANALYZE FORMAT=JSON plan gave, each table's loops times its rows per loop."""
    if isinstance(plan, dict):
        own = plan.get("r_loops", 0) * plan.get("r_rows", 0) if "table_name" in plan else 0
        return own + sum(_rows_read(value) for value in plan.values())
    if isinstance(plan, list):
        return sum(_rows_read(value) for value in plan)
    return 0


@pytest.mark.parametrize("condition", ["pets.status = 'pending'", "pets.species = 'cat'",
                                       "pet_members.role = 'caretaker'", "1 = 1"])
def test_a_members_pets_are_counted_from_their_memberships(deployment, condition):
    """Before member_join named the order, MariaDB counted the caller's pending pets from every pending pet of the
    deployment, probing all the caller's memberships for each one."""
    conn, caller = deployment
    source, args = member_join(caller, MYSQL)
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {source} WHERE {condition}", args)  # noqa: S608 - the test's own text
        (count,) = cur.fetchone()
        cur.execute(f"SELECT COUNT(*) FROM pet_members JOIN pets ON pets.id = pet_members.pet_id"  # noqa: S608
                    f" WHERE pet_members.user_id = %s AND {condition}", (caller,))
        assert cur.fetchone() == (count,)
        cur.execute(f"ANALYZE FORMAT=JSON SELECT COUNT(*) FROM {source} WHERE {condition}", args)  # noqa: S608
        plan = json.loads(cur.fetchone()[0])
    assert count > 0
    assert _rows_read(plan) <= 2 * (OWN + SHARED), json.dumps(plan, indent=1)


def test_one_pet_of_a_member_is_read_by_its_keys(deployment):
    conn, caller = deployment
    source, args = member_join(caller, MYSQL)
    with conn.cursor() as cur:
        cur.execute(f"EXPLAIN SELECT pets.id, pet_members.role FROM {source} WHERE pets.id = %s",  # noqa: S608
                    (*args, 50))
        plan = cur.fetchall()
    assert sorted((row[2], row[3]) for row in plan) == [("pet_members", "const"), ("pets", "const")], plan

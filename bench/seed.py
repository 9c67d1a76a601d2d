"""Bulk seeding of a migrated pet-api database on MariaDB: N pets in a handful of INSERT ... SELECT statements over
MariaDB's SEQUENCE engine (seq_1_to_N), so 1,000,000 pets and their records take minutes, not hours.

The shape (deterministic, so every run and size is comparable):
- owners are skewed: a tenth of the pets belong to "breeders" owning 2,000 each; the rest to people owning 1, 2
  or 3 (in turn);
- every pet has its owner's pet_members row; one pet in 20 is also shared with another user (viewer or caretaker);
- `records_per_pet` records per pet (vaccinations, visits, weights, medications), one in 5 with a due date,
  half of those completed;
- one change per pet in the sync change log (its creation) and an access row per membership;
- a photo's metadata on one pet in 100.
Passwords of seeded users are unusable ('!'): the benchmark's callers register through the API. Every user has
its email_skeleton, as registration gives it: without one, each server's start would backfill every seeded account
first (450,000 at 1,000,000 pets: longer than a test server is given to get ready).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.plugins.accounts.lookalikes import email_skeleton

BREEDER_PETS = 2000  # pets per breeder
SKELETON_ROWS = 5000  # users' look-alike keys sent per statement
NAMES = ("Rex", "Bella", "Max", "Luna", "Charlie", "Lucy", "Cooper", "Daisy", "Milo", "Lola", "Rocky", "Molly",
         "Bailey", "Coco", "Buddy", "Ruby", "Oscar", "Nala", "Teddy", "Zoe", "Loki", "Mia", "Simba", "Kiki")
SPECIES = ("dog", "dog", "dog", "dog", "cat", "cat", "cat", "bird", "rabbit", "fish", "reptile", "other")
KINDS = ("vaccination", "vet_visit", "weight", "medication")


@dataclass(frozen=True)
class Shape:
    """How many rows of each kind a seed of `pets` pets writes."""

    pets: int
    breeders: int
    breeder_pets: int
    users: int
    records_per_pet: int

    @classmethod
    def of(cls, pets: int, records_per_pet: int) -> Shape:
        breeder_pets = pets // 10
        breeders = max(1, -(-breeder_pets // BREEDER_PETS))
        regular = pets - breeder_pets
        return cls(pets, breeders, breeder_pets, breeders + -(-regular // 6) * 3 + 1, records_per_pet)


EMAIL_SQL = "CONCAT('u', seq, '@growth.example')"  # user `seq`'s address; email() says the same


def email(user_id: int) -> str:
    """The seeded address of a user."""
    return f"u{user_id}@growth.example"


def _elt(expr: str, values: tuple[str, ...]) -> str:
    return f"ELT(1 + ({expr}) MOD {len(values)}, {', '.join(repr(v) for v in values)})"


def statements(shape: Shape) -> list[str]:
    """The seeding statements for an empty, migrated database (ids start at 1); only integers of the shape and
    fixed words go into the text."""
    n, u = shape.pets, shape.users
    # pet s (1..n): breeders own the first tenth in blocks; then groups of 6 pets go to 3 people as 1, 2, 3.
    r = f"(seq - {shape.breeder_pets} - 1)"
    owner = (f"IF(seq <= {shape.breeder_pets}, 1 + (seq - 1) DIV {BREEDER_PETS},"
             f" {shape.breeders} + 1 + ({r} DIV 6) * 3 + ({r} MOD 6 >= 1) + ({r} MOD 6 >= 3))")
    created = "TIMESTAMP('2020-01-01') + INTERVAL seq * 97 SECOND"
    name = f"CONCAT({_elt('seq * 7919', NAMES)}, IF(seq MOD 3 = 0, CONCAT(' ', seq MOD 997), ''))"
    out = [
        "INSERT INTO users (id, email, password_hash, nickname, role, disabled, created_at, updated_at)"  # noqa: S608
        f" SELECT seq, {EMAIL_SQL}, '!', CONCAT('user ', seq), 'user', 0, {created},"
        f" {created} FROM seq_1_to_{u}",
        "INSERT INTO pets (id, owner_id, name, name_key, species, breed, sex, birth_date, status, created_at,"  # noqa: S608
        " updated_at, version)"
        f" SELECT seq, {owner}, {name}, LOWER({name}),"  # the names are ASCII: LOWER folds them as search_key does
        f" {_elt('seq * 31', SPECIES)}, NULL, {_elt('seq', ('male', 'female', 'unknown'))},"
        f" DATE('2010-01-01') + INTERVAL (seq * 13) MOD 5000 DAY,"
        f" IF(seq MOD 10 = 0, 'adopted', IF(seq MOD 10 = 1, 'pending', 'available')), {created}, {created}, 1"
        f" FROM seq_1_to_{n}",
        "INSERT INTO pet_members (pet_id, user_id, role, since) SELECT id, owner_id, 'owner', created_at FROM pets",
        # one pet in 20 shared with the user after its owner (never the owner itself: u > every owner id)
        "INSERT INTO pet_members (pet_id, user_id, role, since)"
        " SELECT id, owner_id + 1, IF(id MOD 40 = 0, 'caretaker', 'viewer'), created_at FROM pets WHERE id MOD 20 = 0",
    ]
    if shape.records_per_pet:
        k = shape.records_per_pet
        due = "s.seq MOD 5 = 0"
        out.extend(  # in slices of 100,000 pets: no transaction holds millions of rows
            "INSERT INTO records (pet_id, kind, date, note, value, due_date, completed_at, created_at, updated_at,"  # noqa: S608
            " version)"
            f" SELECT p.id, {_elt('p.id + s.seq', KINDS)}, DATE(p.created_at) + INTERVAL s.seq * 30 DAY,"
            " IF(s.seq MOD 2 = 0, 'routine check', NULL), IF((p.id + s.seq) MOD 4 = 2, 5 + (p.id MOD 30), NULL),"
            f" IF({due}, DATE('2026-01-01') + INTERVAL (p.id + s.seq) MOD 720 DAY, NULL),"
            f" IF({due} AND p.id MOD 2 = 0, p.created_at, NULL), p.created_at, p.created_at, 1"
            f" FROM pets p JOIN seq_1_to_{k} s WHERE p.id BETWEEN {lo} AND {lo + 99_999}"
            for lo in range(1, n + 1, 100_000))
    out += [
        "INSERT INTO sync_changes (seq, type, object_id, pet_id, user_id, action, created_at)"
        " SELECT id, 'pet', id, id, owner_id, 'created', created_at FROM pets",
        "UPDATE sync_counter SET value = (SELECT COALESCE(MAX(seq), 0) FROM sync_changes) WHERE name = 'seq'",
        "INSERT INTO sync_access (pet_id, user_id, granted_seq) SELECT pet_id, user_id, 0 FROM pet_members",
        "INSERT INTO pet_photos (pet_id, etag, content_type, width, height, created_at, updated_at)"
        " SELECT id, MD5(id), 'image/jpeg', 800, 600, created_at, created_at FROM pets WHERE id MOD 100 = 7",
    ]
    return out


def seed(conn: Any, pets: int, *, records_per_pet: int = 10) -> Shape:
    """Fill an empty, migrated database through a pymysql connection (autocommit) and return its shape; the
    tables are analysed afterwards so the optimizer's statistics describe them."""
    shape = Shape.of(pets, records_per_pet)
    with conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        for sql in statements(shape):
            cur.execute(sql)
        _set_skeletons(cur, shape.users)
        cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
        cur.execute("ANALYZE TABLE users, pets, pet_members, records, sync_changes, sync_access, pet_photos")
        cur.fetchall()
    return shape


def _set_skeletons(cur: Any, users: int) -> None:
    """Every seeded user's email_skeleton, computed by the function registration uses, in bulk through a temporary
    table (one UPDATE ... JOIN, not one statement per user)."""
    cur.execute("CREATE TEMPORARY TABLE seed_skeletons (id BIGINT PRIMARY KEY, k CHAR(64) NOT NULL)")
    for lo in range(1, users + 1, SKELETON_ROWS):
        ids = range(lo, min(lo + SKELETON_ROWS, users + 1))
        cur.executemany("INSERT INTO seed_skeletons (id, k) VALUES (%s, %s)",  # sent as multi-row INSERTs
                        [(i, email_skeleton(email(i))) for i in ids])
    cur.execute("UPDATE users JOIN seed_skeletons ON seed_skeletons.id = users.id"
                " SET users.email_skeleton = seed_skeletons.k")
    cur.execute("DROP TEMPORARY TABLE seed_skeletons")

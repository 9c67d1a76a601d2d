"""The index guard: every statement the services issue while serving a representative tour of the API is run
again under EXPLAIN on MariaDB, against a database seeded with 20,000 pets (bench/seed.py's skew), with the
parameters the request really used. A full scan of a seeded table, a full index scan, or a filesort over more
rows than a caller's own share of the data fails the test, naming the statement and the plan. A second test drops
one index on a scratch copy and shows the guard catches it.

Statements that read no table (BEGIN, INSERT ... VALUES, SELECT 1, ...) are counted apart; the test prints how
many distinct statements were issued, explained and exempt, and the call sites in server/ that issued them against
all the call sites there are (the tour's coverage)."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import pyotp
import pytest
import tornado.ioloop

from bench.seed import seed
from server import idempotency, make_app
from server.app import PetAPI
from server.config import Config
from server.db.runner import Statements
from server.plugins.accounts.services.purge import purge_accounts
from server.plugins.accounts.services.users import backfill_email_skeletons
from server.plugins.sync.services import new_entries, purge_changes, visible_pet_ids
from server.services import utcnow
from tests.conftest import migrated_database
from tests.conftest import test_config as profile
from tests.factories import PASSWORD, USER_SCOPES, Api, create_pet, token_for, user_with_token
from tests.mail import Inbox, mail_settings, outbox_settled, token_in
from tests.mariadb_server import connect_database, connect_server
from tests.plugins.photos import images

PETS = 20_000
PARAMS = 8  # parameter sets explained per statement
BIG = 1000  # rows: a plan reading or sorting more than this of a seeded table grows with the deployment
SEEDED = ("users", "pets", "pet_members", "records", "sync_changes", "sync_access", "pet_photos")
SERVER = Path(__file__).resolve().parents[2] / "server"
NO_TABLE = re.compile(r"^\s*(BEGIN|START TRANSACTION|COMMIT|ROLLBACK|SET |SELECT 1$|SELECT GET_LOCK|SELECT RELEASE_LOCK"
                      r"|INSERT INTO \w+ \([^)]*\) VALUES|SHOW |SELECT @@|SELECT VERSION)", re.I)


@dataclass
class Issued:
    """The distinct statements (by text) issued, with up to PARAMS distinct sets of the real parameters each (a
    statement is as good as its worst plan: a pet with 3 records and one with 3,000), and where in server/ each
    came from."""

    statements: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)
    sites: dict[str, set[tuple[str, int]]] = field(default_factory=dict)


def _site() -> tuple[str, int] | None:
    """The first frame in server/ outside the statement runner: the service call that issued the statement."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(str(SERVER)) and "/server/db/" not in path:
            return str(Path(path).relative_to(SERVER.parent)), frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


def capture(app: PetAPI, monkeypatch: pytest.MonkeyPatch) -> Issued:
    """Record every statement the app's driver runs (hooked once, on the driver every connection shares), each of a
    batch too; a write a transaction sends later (execute_later) is traced to its call site when it is queued."""
    issued = Issued()
    driver: Any = app.db.driver  # type: ignore[attr-defined]
    run = driver.run
    later = Statements.execute_later

    def note(sql: str) -> None:
        if (site := _site()) is not None:
            issued.sites.setdefault(sql, set()).add(site)

    async def recording(conn: Any, batch: Any, fetch: Any) -> Any:
        for sql, params in batch:
            seen = issued.statements.setdefault(sql, [])
            if len(seen) < PARAMS and tuple(params) not in seen:
                seen.append(tuple(params))
        note(batch[-1][0])  # the statement whose result is awaited: issued from where the service stands
        return await run(conn, batch, fetch)

    async def queueing(self: Any, sql: str, params: Any = ()) -> None:
        note(sql)
        await later(self, sql, params)

    driver.run = recording
    monkeypatch.setattr(Statements, "execute_later", queueing)
    return issued


def statement_sites() -> set[tuple[str, int]]:
    """Every fetch_one / fetch_all / execute / execute_later call in server/ outside the statement runner (a static
    count)."""
    sites = set()
    for path in SERVER.rglob("*.py"):
        if "/server/db/" in str(path):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("fetch_one", "fetch_all", "execute", "execute_later") and node.args):
                sites.add((str(path.relative_to(SERVER.parent)), node.lineno))
    return sites


def problems(cur: Any, sql: str, params: tuple[object, ...]) -> list[str]:
    """What is wrong with the statement's plan (empty when it reads an index's few rows)."""
    cur.execute("EXPLAIN " + sql, params)
    found = []
    for row in cur.fetchall():
        table, kind, key, rows, extra = (row["table"] or "", row["type"], row["key"], int(row["rows"] or 0),
                                           row["Extra"] or "")
        plan = f"{table}: type={kind} key={key} rows={rows} extra={extra!r}"
        if kind in ("ALL", "index") and rows > BIG:
            found.append("full scan " + plan)
        elif "filesort" in extra and rows > BIG:
            found.append("filesort over an unbounded set " + plan)
    return found


def explain_all(database_url: str, issued: Issued) -> tuple[dict[str, list[str]], int, int]:
    """(statement -> problems of those with any, explained, exempt)."""
    conn = connect_database(database_url)
    bad: dict[str, list[str]] = {}
    explained = exempt = 0
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            for sql, sets in issued.statements.items():
                if NO_TABLE.match(sql) or " FROM " not in sql.upper() and not sql.upper().startswith(
                        ("UPDATE", "DELETE")):
                    exempt += 1
                    continue
                explained += 1
                if found := [p for params in sets for p in problems(cur, sql, params)]:
                    bad[sql] = found
    finally:
        conn.close()
    return bad, explained, exempt


def seeded_database(server_url: str, name: str) -> str:
    """A migrated database holding PETS seeded pets; its URL."""
    url = migrated_database(server_url, name)
    conn = connect_database(url)
    try:
        seed(conn, PETS, records_per_pet=3)
        with conn.cursor() as cur:  # a vet's patient: pet 20 has 3,000 records (the tour lists them)
            cur.execute("INSERT INTO records (pet_id, kind, date, created_at) SELECT 20, 'weight',"
                        " DATE('2020-01-01') + INTERVAL seq DAY, NOW(6) FROM seq_1_to_3000")
            cur.execute("ANALYZE TABLE records")
            cur.fetchall()
    finally:
        conn.close()
    return url


@pytest.fixture(scope="module")
def seeded(mysql_server_url: str) -> str:
    return seeded_database(mysql_server_url, "pet_api_explain")


@pytest.fixture(scope="module")
def scratch(mysql_server_url: str) -> str:
    """A second seeded database, to drop an index from."""
    return seeded_database(mysql_server_url, "pet_api_explain_scratch")


@pytest.fixture
def config(seeded: str, smtp_server: tuple[Inbox, int]) -> Config:
    """The test profile on the seeded database, its mail sent to a real SMTP server (the sender's statements are
    part of the tour)."""
    return profile(database_url=seeded, plugin_settings=mail_settings(smtp_server[1]))


@pytest.fixture
def app(io_loop: tornado.ioloop.IOLoop, config: Config) -> Iterator[PetAPI]:
    """The application on the seeded database (not wiped: the seed is the point)."""
    application = make_app(config)
    io_loop.run_sync(application.startup)
    yield application
    io_loop.run_sync(application.shutdown)


async def tour(app: PetAPI, api: Api, inbox: Inbox) -> None:
    """Representative requests of every plugin, as an owner with a household, a member and an admin."""
    owner, token = await user_with_token(app)
    friend, friend_token = await user_with_token(app, verified=True)
    _, admin_token = await user_with_token(app, role="admin")
    breeder_admin = token_for(app, 1, ("users:me", "pets:read", "pets:write", "users:admin", "pets:admin"))
    pets = [await create_pet(api, token, name=name, species=species)
            for name, species in (("Rex", "dog"), ("Mia", "cat"), ("Bo", "dog"))]
    pet = pets[0]
    ok = {200, 201, 202, 204}

    async def call(method: str, path: str, tok: str = token, **kw: Any) -> Any:
        response = await api.request(method, path, token=tok, **kw)
        assert response.status in ok, (method, path, response.status, response.body)
        return response.body

    # an admin's list counts every pet unless it says include_total=false (documented as growing)
    everyone = "&include_total=false"
    for sort in ("id", "-id", "name", "-name", "created_at", "-created_at"):
        for who, extra in ((token, ""), (admin_token, everyone)):
            first = await call("GET", f"/v1/pets?sort={sort}&limit=2{extra}", who)
            if cursor := first["page"]["next_cursor"]:
                await call("GET", f"/v1/pets?sort={sort}&limit=2&cursor={cursor}{extra}", who)
        for species in ("dog", "reptile"):
            await call("GET", f"/v1/pets?sort={sort}&species={species}{everyone}", admin_token)
            await call("GET", f"/v1/pets?sort={sort}&status=pending{everyone}", admin_token)
    for query in ("species=dog", "status=available", f"owner_id={owner.id}", "role=owner", "q=re",
                  "species=cat&sort=name", "offset=1"):
        await call("GET", f"/v1/pets?{query}")
    await call("GET", "/v1/pets?offset=100000&limit=5")  # past the end: the total is counted apart
    await call("GET", f"/v1/pets?owner_id=1&limit=5{everyone}", admin_token)
    await call("GET", f"/v1/pets?limit=5{everyone}", breeder_admin)
    breeder = token_for(app, 1, USER_SCOPES)  # a member of 2,000 pets: pages in id order read 21 of them
    for sort in ("id", "-id"):
        listed = await call("GET", f"/v1/pets?limit=5&sort={sort}", breeder)
        await call("GET", f"/v1/pets?limit=5&sort={sort}&cursor={listed['page']['next_cursor']}", breeder)
    await call("GET", f"/v1/pets/{pet['id']}")
    await call("GET", "/v1/pets/5", admin_token)
    await call("PATCH", f"/v1/pets/{pet['id']}", json={"status": "pending"}, headers={"If-Match": '"v1"'})
    record = (await call("POST", f"/v1/pets/{pet['id']}/records",
                         json={"kind": "vaccination", "date": "2026-01-01", "due_date": "2026-12-01"}))["data"]
    for n in range(3):
        await call("POST", f"/v1/pets/{pet['id']}/records", json={"kind": "weight", "date": f"2026-01-0{n + 2}",
                                                                  "value": 4.5})
    listed = await call("GET", f"/v1/pets/{pet['id']}/records?limit=2")
    await call("GET", f"/v1/pets/{pet['id']}/records?limit=2&cursor={listed['page']['next_cursor']}")
    await call("GET", f"/v1/pets/{pet['id']}/records?kind=weight")
    big = await call("GET", "/v1/pets/20/records?limit=2", admin_token)
    await call("GET", f"/v1/pets/20/records?limit=2&cursor={big['page']['next_cursor']}", admin_token)
    await call("GET", "/v1/pets/20/records?limit=2&kind=weight", admin_token)
    await call("GET", f"/v1/pets/{pet['id']}/records/{record['id']}")
    await call("PATCH", f"/v1/pets/{pet['id']}/records/{record['id']}", json={"note": "booster"})
    await call("GET", "/v1/reminders?within_days=366")
    feed = (await call("POST", "/v1/users/me/calendar"))["data"]
    ics = await api.get(feed["url"])  # a path: the token in it is the credential
    assert ics.status == 200, ics.status
    # households: invite, accept, list, change the role, history, transfer back and forth
    invitation = (await call("POST", f"/v1/pets/{pet['id']}/invitations",
                             json={"email": friend.email, "role": "viewer"}))["data"]
    await call("GET", f"/v1/pets/{pet['id']}/invitations")
    await call("GET", "/v1/invitations", friend_token)
    await call("POST", f"/v1/invitations/{invitation['id']}/accept", friend_token)
    await call("GET", f"/v1/pets/{pet['id']}/members")
    await call("PATCH", f"/v1/pets/{pet['id']}/members/{friend.id}", json={"role": "caretaker"})
    await call("GET", f"/v1/pets/{pet['id']}/history")
    await call("POST", f"/v1/pets/{pet['id']}/transfer", json={"user_id": friend.id})
    await call("POST", f"/v1/pets/{pet['id']}/transfer", friend_token, json={"user_id": owner.id})
    await call("DELETE", f"/v1/pets/{pet['id']}/members/{friend.id}")
    second = (await call("POST", f"/v1/pets/{pets[1]['id']}/invitations",
                         json={"email": friend.email, "role": "viewer"}))["data"]
    await call("DELETE", f"/v1/pets/{pets[1]['id']}/invitations/{second['id']}")
    # photos
    uploaded = await api.request("PUT", f"/v1/pets/{pet['id']}/photo", token=token,
                                 body=images.jpeg_with_gps_rotated(), headers={"Content-Type": "image/jpeg"})
    assert uploaded.status == 201, uploaded.body
    replaced = await api.request("PUT", f"/v1/pets/{pet['id']}/photo", token=token, body=images.png_with_transparency(),
                                 headers={"Content-Type": "image/png", "If-Match": uploaded.headers["ETag"]})
    assert replaced.status == 200, replaced.body
    await call("GET", f"/v1/pets/{pet['id']}/photo?size=256")
    await call("GET", f"/v1/pets/{pet['id']}")
    await call("DELETE", f"/v1/pets/{pet['id']}/photo")
    # sync: from the start, then from its cursor; a new member's sync brings the pet's records
    synced = await call("GET", "/v1/sync?limit=50")
    await call("GET", f"/v1/sync?cursor={synced['data']['cursor']}")
    joined = (await call("POST", f"/v1/pets/{pets[1]['id']}/invitations",
                         json={"email": friend.email, "role": "viewer"}))["data"]
    before = (await call("GET", "/v1/sync?limit=500", friend_token))["data"]["cursor"]
    await call("POST", f"/v1/pets/{pets[1]['id']}/records", json={"kind": "weight", "date": "2026-02-01", "value": 3})
    await call("POST", f"/v1/invitations/{joined['id']}/accept", friend_token)
    await call("GET", f"/v1/sync?cursor={before}", friend_token)
    # accounts
    await call("GET", "/v1/users/me")
    await call("PATCH", "/v1/users/me", json={"nickname": "Ann"})
    await call("GET", "/v1/users/me/export")
    await call("GET", "/v1/users?limit=5&include_total=false", admin_token)
    await call("GET", f"/v1/users/{owner.id}", admin_token)
    login = await api.post("/v1/tokens", json={"account": owner.email, "secret": PASSWORD})
    assert login.status in ok, login.body
    await call("GET", "/v1/sessions", login.body["data"]["token"])
    await call("GET", "/v1/tokens/current")
    await call("DELETE", f"/v1/pets/{pet['id']}/records/{record['id']}")
    await call("DELETE", f"/v1/pets/{pets[2]['id']}")
    await call("DELETE", "/v1/users/me/calendar")
    # idempotent create: the first answer is stored, the retry replays it
    for _ in range(2):
        await call("POST", "/v1/pets", json={"name": "Once", "species": "cat"}, headers={"Idempotency-Key": "k-1"})
    # sessions and tokens: refresh, end one session, the others, then the current token
    pair = login.body["data"]
    refreshed = await api.post("/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status in ok, refreshed.body
    again = (await api.post("/v1/tokens", json={"account": owner.email, "secret": PASSWORD})).body
    sessions = (await call("GET", "/v1/sessions", again["data"]["token"]))["data"]
    await call("DELETE", f"/v1/sessions/{sessions[-1]['id']}", again["data"]["token"])
    await call("DELETE", "/v1/sessions?others=true", again["data"]["token"])
    await call("DELETE", "/v1/tokens/current", again["data"]["token"])
    # mail: a reset and a verification queued, then sent by the outbox's sender
    reset = await api.post("/v1/password-resets", json={"email": owner.email})
    assert reset.status in {200, 202}, reset.body
    _, unverified_token = await user_with_token(app)  # the friend verified its e-mail to answer the invitation
    await call("POST", "/v1/users/me/email-verification", unverified_token)
    # the messages go out over SMTP; the reset and the verification are confirmed with their tokens
    await outbox_settled(app.db)
    [reset_mail] = await inbox.wait_for(owner.email)
    confirmed = await api.post("/v1/password-resets/confirm", json={"token": token_in(reset_mail),
                                                                     "password": "a-fresh-start-93"})
    assert confirmed.status == 200, confirmed.body
    unverified = await api.get("/v1/users/me", token=unverified_token)
    [verify_mail, *_] = await inbox.wait_for(unverified.body["data"]["email"])
    verified = await api.post("/v1/email-verifications/confirm", json={"token": token_in(verify_mail)})
    assert verified.status == 200, verified.body
    # two-factor authentication: enrol, confirm, log in with a code, turn it off with a recovery code
    mfa_user, mfa_token = await user_with_token(app)
    secret = (await call("POST", "/v1/users/me/mfa", mfa_token, json={"password": PASSWORD}))["data"]["secret"]
    recovery = (await call("POST", "/v1/users/me/mfa/confirm", mfa_token,
                           json={"code": pyotp.TOTP(secret).now()}))["data"]["recovery_codes"]
    with_code = await api.post("/v1/tokens", json={"account": mfa_user.email, "secret": PASSWORD,
                                                   "otp": recovery[0]})
    assert with_code.status == 201, with_code.body
    await call("DELETE", "/v1/users/me/mfa", mfa_token, json={"password": PASSWORD, "code": recovery[1]})
    # an account deleted (its pets, memberships and sync access go with it); an admin disables another
    leaving, leaving_token = await user_with_token(app)
    await create_pet(api, leaving_token)
    await call("DELETE", "/v1/users/me", leaving_token, json={"password": PASSWORD})
    await call("PATCH", f"/v1/users/{friend.id}", admin_token, json={"disabled": True})
    # the periodic work: change log, accounts, idempotency and revocation purges, the sync poller's reads
    await purge_changes(app.db, before=utcnow())
    await purge_accounts(app.db, app.plugin_settings["accounts"])
    await idempotency.purge(app.db)
    await app.revocations.purge(app.db)
    await new_entries(app.db, after=0, limit=10)
    # the accounts plugin's start-up work (its start ran before capture) on rows an old release wrote: the owner's
    # and a fullwidth look-alike of it (one UPDATE for the page fails, then row by row)
    await app.db.execute("UPDATE users SET email_skeleton = NULL WHERE id = %s", (owner.id,))
    await app.db.execute("INSERT INTO users (email, password_hash, nickname, created_at, updated_at)"
                         " VALUES (%s, '!', 'twin', %s, %s)", ("ｕ" + owner.email[1:], utcnow(), utcnow()))
    assert (await backfill_email_skeletons(app.db))[0] == 1
    await visible_pet_ids(app.db, user_id=owner.id)


@pytest.mark.gen_test(timeout=120)
async def test_every_statement_of_the_tour_reads_an_index(app: PetAPI, api: Api, seeded: str,
                                                           smtp_server: tuple[Inbox, int],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    issued = capture(app, monkeypatch)
    await tour(app, api, smtp_server[0])
    bad, explained, exempt = explain_all(seeded, issued)
    sites = statement_sites()
    hit = set().union(*issued.sites.values()) & sites
    print(f"\nEXPLAIN guard: {len(issued.statements)} distinct statements issued, {explained} explained, "
          f"{exempt} exempt (no table read); call sites in server/: {len(hit)} of {len(sites)} exercised")
    for path, line in sorted(sites - hit):
        print(f"  not exercised: {path}:{line}")
    assert explained > 100 and len(hit) >= 0.85 * len(sites), (explained, len(hit), len(sites))
    assert not bad, "\n\n".join(f"{sql}\n  " + "\n  ".join(p) for sql, p in bad.items())


@pytest.mark.gen_test(timeout=120)
async def test_the_guard_fails_when_a_list_index_is_dropped(app: PetAPI, api: Api, scratch: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    issued = capture(app, monkeypatch)
    _, admin_token = await user_with_token(app, role="admin")
    listed = await api.get("/v1/pets?sort=name&limit=5&include_total=false", token=admin_token)
    assert listed.status == 200 and len(listed.body["data"]) == 5 and listed.body["page"]["total"] is None, listed.body
    bad, explained, _ = explain_all(scratch, issued)
    assert explained >= 1 and not bad, bad
    conn = connect_server(scratch)
    try:
        with conn.cursor() as cur:
            cur.execute("ALTER TABLE pet_api_explain_scratch.pets DROP INDEX ix_pets_name")
    finally:
        conn.close()
    bad, _, _ = explain_all(scratch, issued)
    [(sql, found)] = bad.items()
    assert "ORDER BY name, pets.id" in sql, sql
    assert any(p.startswith("full scan pets: type=ALL") and "filesort" in p for p in found), found

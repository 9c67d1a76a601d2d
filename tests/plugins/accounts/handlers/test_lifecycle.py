"""Account deletion (every row of the account goes, its pets' other members hear of it) and the streamed data
export, over HTTP on MariaDB and SQLite."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from server.changes import Change
from server.db import pages
from server.plugins.accounts.services import export as export_service
from tests.factories import PASSWORD, Api, assert_error, both_backends, create_pet, create_user
from tests.mail import mail_settings
from tests.plugins.photos import images

USER_COLUMNS = ("user_id", "owner_id", "actor_id")  # columns that name a user, in any plugin's table
# The sync change log keeps, until sync_retention_days, what the other members' clients are owed: a deleted pet's
# tombstone and "member <id> left" (ids and actions, nothing else of the account); the account's own access rows
# (sync_access.user_id) go with it.
OWED_TO_MEMBERS = {"sync_changes", "sync_access"}


@pytest.fixture
def config_overrides(smtp_server: Any) -> dict[str, Any]:
    return {"plugin_settings": mail_settings(smtp_server[1])}


async def login(api: Api, email: str) -> dict[str, Any]:
    response = await api.login(email)
    assert response.status == 201, response.body
    return response.body["data"]


async def share(app: Any, *, pet_id: int, user_id: int, role: str) -> None:
    await app.db.execute("INSERT INTO pet_members (pet_id, user_id, role, since) VALUES (%s, %s, %s,"
                         " '2026-01-01 00:00:00')", (pet_id, user_id, role))


async def seed(api: Api, app: Any) -> dict[str, Any]:
    """An account with two pets (records on each, one due; one pet shared with a friend and with a photo), a role
    on the friend's pet, invitations sent and received, a calendar feed, sessions, a pending reset, queued mail,
    an idempotent answer and a failed login."""
    ann, friend = await create_user(app, verified=True), await create_user(app)  # ann may see invitations
    ann_pair, friend_pair = await login(api, ann.email), await login(api, friend.email)
    token = ann_pair["token"]
    pets = [await create_pet(api, token, name="Rex"), await create_pet(api, token, name="Tom", species="cat")]
    records = []
    for pet in pets:
        for kind in ("vaccination", "vet_visit"):
            made = await api.post(f"/v1/pets/{pet['id']}/records", token=token,
                                  json={"kind": kind, "date": "2026-01-02", "note": "fine"})
            assert made.status == 201, made.body
            records.append(made.body["data"])
    due = await api.post(f"/v1/pets/{pets[1]['id']}/records", token=token,
                         json={"kind": "vaccination", "date": "2026-01-03", "due_date": "2026-02-01"})
    assert due.status == 201, due.body
    records.append(due.body["data"])
    photo = await api.request("PUT", f"/v1/pets/{pets[0]['id']}/photo", body=images.jpeg_with_gps_rotated(),
                              token=token, headers={"Content-Type": "image/jpeg"})
    assert photo.status == 201, photo.body
    assert (await api.post("/v1/users/me/calendar", token=token)).status == 201
    sent = await api.post(f"/v1/pets/{pets[1]['id']}/invitations", token=token,
                          json={"email": "someone@example.com", "role": "viewer"})
    assert sent.status == 201, sent.body
    friends_pet = await create_pet(api, friend_pair["token"], name="Bo")
    await share(app, pet_id=pets[0]["id"], user_id=friend.id, role="caretaker")
    await share(app, pet_id=friends_pet["id"], user_id=ann.id, role="viewer")
    received = await api.post(f"/v1/pets/{friends_pet['id']}/invitations", token=friend_pair["token"],
                              json={"email": ann.email, "role": "caretaker"})
    assert received.status == 201, received.body
    idem = await api.post("/v1/pets", json={"name": "Idem", "species": "dog"}, token=token,
                          headers={"Idempotency-Key": "seed-key-1"})
    assert idem.status == 201
    pets.append(idem.body["data"])
    assert (await api.post("/v1/password-resets", json={"email": ann.email})).status == 202
    assert (await api.login(ann.email, "wrong-password-1")).status == 401
    return {"ann": ann, "friend": friend, "token": token, "friend_token": friend_pair["token"], "pets": pets,
            "records": records, "friends_pet": friends_pet, "due": due.body["data"], "sent": sent.body["data"],
            "received": received.body["data"]}


async def rows_naming(app: Any, *, user_id: int, pet_ids: list[int], email: str) -> dict[str, int]:
    """Rows left that belong to the account, table by table: every table of the database is looked at, so a
    plugin's table added later is covered too."""
    found = {}
    for (table,) in await app.db.fetch_all(app.db.dialect.tables):
        columns = {str(c[0]).lower() for c in await app.db.fetch_all(app.db.dialect.columns, (table,))}
        conditions, args = [], []
        for name in USER_COLUMNS:
            if name in columns and table != "sync_changes":
                conditions.append(f"{name} = %s")
                args.append(user_id)
        if "pet_id" in columns and pet_ids and table not in OWED_TO_MEMBERS:
            conditions.append(f"pet_id IN ({', '.join(['%s'] * len(pet_ids))})")
            args.extend(pet_ids)
        if table == "pets":
            conditions.append(f"id IN ({', '.join(['%s'] * len(pet_ids))})")
            args.extend(pet_ids)
        if table == "users":
            conditions.append("id = %s OR email = %s")
            args.extend([user_id, email])
        if table == "idempotency_keys":  # its own answers, and its registration's (no token: the anonymous scope)
            conditions.append("scope = %s OR (scope = 'anon' AND INSTR(body, %s) > 0)")
            args.extend([str(user_id), email])
        if table == "login_failures":
            conditions.append("k = %s")
            args.append(f"account:{email}")
        if table == "token_revocations":  # the cut-off that keeps the account's tokens dead is the exception
            continue
        if conditions:
            count = await app.db.fetch_one(f"SELECT COUNT(*) FROM {table} WHERE {' OR '.join(conditions)}",  # noqa: S608
                                           tuple(args))
            found[table] = int(count[0])
    return found


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_deleting_an_account_removes_every_row_tells_the_members_and_frees_the_email(api, app):
    seeded = await seed(api, app)
    ann, friend = seeded["ann"], seeded["friend"]
    pet_ids = [p["id"] for p in seeded["pets"]]
    told: list[Change] = []

    async def record(tx: Any, change: Change) -> None:
        told.append(change)

    app.changes.listen(record)
    before = await rows_naming(app, user_id=ann.id, pet_ids=pet_ids, email=ann.email)
    for table in ("users", "pets", "pet_members", "records", "sessions", "refresh_tokens", "account_tokens",
                  "outbox", "idempotency_keys", "login_failures"):
        assert before.get(table, 0) > 0 or table == "refresh_tokens", (table, before)

    wrong = await api.delete("/v1/users/me", json={"password": "not-my-password"}, token=seeded["token"])
    assert_error(wrong, 403, 1004, "DELETE /v1/users/me", "the password does not match")
    assert await rows_naming(app, user_id=ann.id, pet_ids=pet_ids, email=ann.email) == before

    deleted = await api.delete("/v1/users/me", json={"password": PASSWORD}, token=seeded["token"])
    assert (deleted.status, deleted.body) == (200, {"code": 200, "data": None, "message": "ok"})
    after = await rows_naming(app, user_id=ann.id, pet_ids=pet_ids, email=ann.email)
    assert after == dict.fromkeys(before, 0), after
    revocations = await app.db.fetch_all("SELECT user_id FROM token_revocations WHERE user_id = %s", (ann.id,))
    assert len(revocations) == 1  # only the cut-off, until the last token would have expired
    assert_error(await api.get("/v1/users/me", token=seeded["token"]), 401, 10033, "GET /v1/users/me")

    assert sorted((c.type, c.action, c.pet_id) for c in told) == sorted(
        [("account", "deleted", None), ("member", "left", seeded["friends_pet"]["id"])]
        + [("pet", "deleted", pet_id) for pet_id in pet_ids])
    assert all(c.actor_id == ann.id for c in told)
    friends = await api.get("/v1/pets", token=seeded["friend_token"])  # the shared pet went with its owner
    assert [p["id"] for p in friends.body["data"]] == [seeded["friends_pet"]["id"]]

    again = await api.post("/v1/users", json={"email": ann.email, "password": PASSWORD, "nickname": "Ann again"})
    assert again.status == 201, again.body
    assert (await api.login(friend.email)).status == 201


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_deleting_an_account_forgets_its_registrations_answer_and_a_retry_registers_afresh(api, app):
    kept_key, gone_key = f"reg-kept-{uuid.uuid4().hex}", f"reg-gone-{uuid.uuid4().hex}"
    kept = {"email": "kept@example.com", "password": PASSWORD, "nickname": "Kept"}
    assert (await api.post("/v1/users", json=kept, headers={"Idempotency-Key": kept_key})).status == 201
    account = {"email": "gone@example.com", "password": PASSWORD, "nickname": "Gone"}
    first = await api.post("/v1/users", json=account, headers={"Idempotency-Key": gone_key})
    assert first.status == 201, first.body
    user_id = first.body["data"]["id"]
    token = (await login(api, account["email"]))["token"]
    deleted = await api.delete("/v1/users/me", json={"password": PASSWORD}, token=token)
    assert (deleted.status, deleted.body) == (200, {"code": 200, "data": None, "message": "ok"})
    left = await app.db.fetch_all("SELECT idem_key FROM idempotency_keys WHERE scope = 'anon' AND idem_key IN"
                                  " (%s, %s)", (kept_key, gone_key))
    assert [row[0] for row in left] == [kept_key]  # another account's answer stays
    again = await api.post("/v1/users", json=account, headers={"Idempotency-Key": gone_key})
    assert again.status == 201, again.body
    assert "Idempotent-Replayed" not in again.headers
    assert again.body["data"]["id"] != user_id
    assert again.headers["Location"] == f"/v1/users/{again.body['data']['id']}"
    assert (await api.login(account["email"])).status == 201


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_admin_deletes_accounts_but_never_the_last_admin(api, app):
    admin, user = await create_user(app, role="admin"), await create_user(app)
    admin_token = (await login(api, admin.email))["token"]
    user_token = (await login(api, user.email))["token"]
    refused = await api.delete(f"/v1/users/{admin.id}", token=user_token)
    assert_error(refused, 403, 1004, f"DELETE /v1/users/{admin.id}")
    assert (await api.delete(f"/v1/users/{user.id}", token=admin_token)).status == 200
    assert_error(await api.delete(f"/v1/users/{user.id}", token=admin_token), 404, 1002, f"DELETE /v1/users/{user.id}")
    last = await api.delete(f"/v1/users/{admin.id}", token=admin_token)
    assert_error(last, 409, 1005, f"DELETE /v1/users/{admin.id}", "the last administrator account cannot be deleted")
    own = await api.delete("/v1/users/me", json={"password": PASSWORD}, token=admin_token)
    assert_error(own, 409, 1005, "DELETE /v1/users/me")
    second = await create_user(app, role="admin")
    assert (await api.delete(f"/v1/users/{admin.id}", token=admin_token)).status == 200
    assert (await api.login(second.email)).status == 201


INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")


def instants_of(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every timestamp field (`*_at`, `since`) of a JSON document, arrays' items sharing a path."""
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            if isinstance(item, str) and (key.endswith("_at") or key == "since"):
                yield inner, item
            else:
                yield from instants_of(item, inner)
    elif isinstance(value, list):
        for item in value:
            yield from instants_of(item, path)


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_the_export_is_one_streamed_json_document_with_every_pet_record_and_membership(api, app, monkeypatch):
    monkeypatch.setattr(pages, "PAGE", 2)  # several pages of each exporter's rows, and flushes in between
    monkeypatch.setattr(export_service, "FLUSH_EVERY", 4)
    seeded = await seed(api, app)
    ann = seeded["ann"]
    response = await api.get("/v1/users/me/export", token=seeded["token"])
    assert response.status == 200
    assert (response.headers["Cache-Control"], response.headers["Content-Type"]) == (
        "no-store", "application/json; charset=UTF-8")
    document = orjson.loads(response.raw)
    assert (document["code"], document["message"]) == (200, "ok")
    data = document["data"]
    assert (data["format"], data["user_id"]) == ("pet-api-export/1", ann.id)
    sections = data["sections"]
    assert list(sections) == ["account", "sessions", "pets", "pet_members", "records", "history", "invitations_sent",
                              "invitations_received", "reminders", "calendar_feeds", "photos"]
    assert sections["account"] == [{**sections["account"][0], "id": ann.id, "email": ann.email, "language": "en"}]
    assert len(sections["sessions"]) == 1 and "refresh_token" not in sections["sessions"][0]
    expected_pets = {p["id"]: "owner" for p in seeded["pets"]} | {seeded["friends_pet"]["id"]: "viewer"}
    assert {p["id"]: p["role"] for p in sections["pets"]} == expected_pets
    assert sorted((m["pet_id"], m["user_id"], m["role"]) for m in sections["pet_members"]) == sorted(
        [(p["id"], ann.id, "owner") for p in seeded["pets"]] + [(seeded["pets"][0]["id"], seeded["friend"].id,
                                                                 "caretaker"),
                                                                (seeded["friends_pet"]["id"], ann.id, "viewer")])
    assert sorted(r["id"] for r in sections["records"]) == sorted(r["id"] for r in seeded["records"])
    assert sections["records"][0] == seeded["records"][0]  # as GET shows it
    pet_ids = {p["id"] for p in seeded["pets"]}
    made = [(h["pet_id"], h["type"], h["action"]) for h in sections["history"]]
    assert {(pet_id, "pet", "created") for pet_id in pet_ids} <= set(made)
    assert sorted(h["object_id"] for h in sections["history"] if h["type"] == "record") == sorted(
        r["id"] for r in seeded["records"])
    assert all(h["actor"]["user_id"] == ann.id for h in sections["history"])
    assert sections["invitations_sent"] == [seeded["sent"]]
    assert [(i["id"], i["email"], i["status"]) for i in sections["invitations_received"]] == [
        (seeded["received"]["id"], ann.email, "pending")]
    assert [(r["id"], r["due_date"], r["pet"]["id"]) for r in sections["reminders"]] == [
        (seeded["due"]["id"], "2026-02-01", seeded["pets"][1]["id"])]
    assert list(sections["calendar_feeds"][0]) == ["created_at"]  # never the feed's token or URL
    [photo] = sections["photos"]
    original = await api.get(f"/v1/pets/{seeded['pets'][0]['id']}/photo?size=original", token=seeded["token"])
    assert original.status == 200
    assert (photo["pet_id"], photo["content_type"], base64.b64decode(photo["data_base64"])) == (
        seeded["pets"][0]["id"], original.headers["Content-Type"], original.raw)
    me = await api.get("/v1/users/me", token=seeded["token"])
    assert sections["account"][0]["created_at"] == me.body["data"]["created_at"]  # as the API writes it
    instants = list(instants_of(document))
    assert {"data.sections.account.created_at", "data.sections.sessions.created_at",
            "data.sections.sessions.last_used_at", "data.sections.pet_members.since"} <= {p for p, _ in instants}
    assert [(path, text) for path, text in instants if not INSTANT.fullmatch(text)] == []
    friend_export = orjson.loads((await api.get("/v1/users/me/export", token=seeded["friend_token"])).raw)
    assert {p["id"] for p in friend_export["data"]["sections"]["pets"]} == {seeded["friends_pet"]["id"],
                                                                            seeded["pets"][0]["id"]}
    assert "email" not in str(friend_export["data"]["sections"]["pet_members"])  # no other user's address


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_unverified_account_exports_no_invitation_to_its_address_as_it_lists_none(api, app):
    owner = await create_user(app, verified=True)
    owner_token = (await login(api, owner.email))["token"]
    pet = await create_pet(api, owner_token, name="Secret Bella", species="cat")
    sent = await api.post(f"/v1/pets/{pet['id']}/invitations", token=owner_token,
                          json={"email": "victim@example.com", "role": "caretaker"})
    assert sent.status == 201, sent.body
    squatter = await create_user(app, email="victim@example.com")  # someone else registered the address
    token = (await login(api, squatter.email))["token"]
    listed = await api.get("/v1/invitations", token=token)
    assert (listed.status, listed.body["data"]) == (200, [])
    exported = await api.get("/v1/users/me/export", token=token)
    assert exported.status == 200
    sections = orjson.loads(exported.raw)["data"]["sections"]
    assert sections["account"][0]["email_verified"] is False
    assert sections["invitations_received"] == []
    assert b"Secret Bella" not in exported.raw
    await app.db.execute("UPDATE users SET email_verified_at = '2026-01-01 00:00:00' WHERE id = %s", (squatter.id,))
    verified = orjson.loads((await api.get("/v1/users/me/export", token=token)).raw)["data"]["sections"]
    assert verified["invitations_received"] == [sent.body["data"]]


SECTIONS = {"account", "sessions", "pets", "pet_members", "records", "history", "invitations_sent",
            "invitations_received", "reminders", "calendar_feeds", "photos"}


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_new_accounts_export_has_every_section_empty_ones_as_empty_lists(api, app):
    user = await create_user(app)
    token = (await login(api, user.email))["token"]
    response = await api.get("/v1/users/me/export", token=token)
    assert response.status == 200
    sections = orjson.loads(response.raw)["data"]["sections"]
    assert set(sections) == SECTIONS
    assert {name: items for name, items in sections.items() if name not in ("account", "sessions")} == dict.fromkeys(
        SECTIONS - {"account", "sessions"}, [])
    assert [a["id"] for a in sections["account"]] == [user.id] and len(sections["sessions"]) == 1


@pytest.mark.gen_test
async def test_a_plugins_declared_sections_are_written_empty_when_it_yields_none_of_them():
    from server.plugins import Plugin

    async def notes(db: Any, user_id: int) -> Any:
        yield "notes", {"id": 1}

    async def nothing(db: Any, user_id: int) -> Any:
        return
        yield

    written: list[bytes] = []

    async def flush() -> None:
        return None

    plugins = [Plugin("notes", [], export=notes, export_sections=("notes", "tags")),
               Plugin("quiet", [], export=nothing, export_sections=("quiet",))]
    count = await export_service.write_export(None, plugins, user_id=1, dumps=orjson.dumps,  # type: ignore[arg-type]
                                              write=written.append, flush=flush)
    document = orjson.loads(b"".join(written))
    assert (count, document["data"]["sections"]) == (1, {"notes": [{"id": 1}], "tags": [], "quiet": []})


@pytest.mark.gen_test
async def test_a_plugin_that_yields_a_section_twice_apart_is_refused():
    from server.plugins import Plugin

    async def jumbled(db: Any, user_id: int) -> Any:
        for section in ("a", "b", "a"):
            yield section, {}

    written: list[bytes] = []

    async def flush() -> None:
        return None

    with pytest.raises(export_service.SectionOrder, match="'jumbled' yielded section 'a' twice apart"):
        await export_service.write_export(None, [Plugin("jumbled", [], export=jumbled)], user_id=1,  # type: ignore[arg-type]
                                          dumps=orjson.dumps, write=written.append, flush=flush)

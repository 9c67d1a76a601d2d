"""Users over HTTP, on MariaDB and on the embedded SQLite: register, log in, me, and the administrators' view."""

import asyncio
import datetime as dt
import re
import uuid
from typing import Any

import pytest

from server.errors import InvalidParameter
from server.plugins.accounts.passwords import common_passwords, context_words
from server.plugins.accounts.services.credentials import create_or_promote_admin
from server.plugins.accounts.services.users import find_user_by_email
from tests.factories import PASSWORD, assert_error, both_backends, create_user, token_for, unique_email, user_with_token

ADMIN_SCOPES = ["users:me", "users:admin"]


async def register(api: Any, email: str, password: str = PASSWORD, nickname: str = "Tester") -> Any:
    return await api.post("/v1/users", json={"email": email, "password": password, "nickname": nickname})


@both_backends
@pytest.mark.gen_test
async def test_register_log_in_and_read_me(api):
    created = await register(api, "Alice@Example.COM", nickname="  Alice ")
    assert created.status == 201, created.body
    data = created.body["data"]
    assert set(data) == {"id", "email", "nickname", "role", "created_at", "email_verified"}
    assert data["email_verified"] is False
    assert (data["email"], data["nickname"], data["role"]) == ("alice@example.com", "Alice", "user")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", data["created_at"])
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(data["created_at"].replace("Z", "+00:00"))
    assert abs(age.total_seconds()) < 60
    assert created.headers["Location"] == f"/v1/users/{data['id']}"
    assert b"argon2" not in created.raw and b"password" not in created.raw

    token = await api.login("alice@example.com")
    assert token.status == 201, token.body
    assert token.body["data"]["token_type"] == "Bearer"
    assert token.body["data"]["expires_in"] == 3600
    assert token.body["data"]["scopes"] == ["pets:read", "pets:write", "users:me"]

    me = await api.get("/v1/users/me", token=token.body["data"]["token"])
    assert me.status == 200
    assert me.body == {"code": 200, "data": data, "message": "ok"}


@both_backends
@pytest.mark.gen_test
async def test_invalid_registration_names_each_field(api):
    response = await api.post("/v1/users", json={"email": "not-an-email", "password": "short", "nickname": ""})
    assert_error(response, 400, 1001, "POST /v1/users")
    assert sorted(e["field"] for e in response.body["errors"]) == ["email", "nickname", "password"]
    empty = await api.post("/v1/users", json={})
    assert_error(empty, 400, 1001, "POST /v1/users")
    assert {e["field"]: e["message"] for e in empty.body["errors"]} == {
        "email": "Field required", "password": "Field required", "nickname": "Field required"}
    sneaky = await api.post("/v1/users", json={"email": unique_email(), "password": PASSWORD, "nickname": "x",
                                               "role": "admin", "shoe_size": 44})
    assert_error(sneaky, 400, 1001, "POST /v1/users")
    assert {e["field"]: e["message"] for e in sneaky.body["errors"]} == {
        "role": "read-only field", "shoe_size": "unknown field"}


@both_backends
@pytest.mark.parametrize(("password", "ok"), [("9q#Lm2x", False), ("9q#Lm2xZ", True), ("ü" * 256, True),
                                              ("ü" * 257, False)])
@pytest.mark.gen_test
async def test_password_needs_8_to_256_characters(api, password, ok):
    response = await register(api, unique_email(), password=password)
    if ok:
        assert response.status == 201, response.body
        assert response.body["data"]["role"] == "user"
    else:
        assert_error(response, 400, 1001, "POST /v1/users")
        assert [e["field"] for e in response.body["errors"]] == ["password"]


@both_backends
@pytest.mark.gen_test
async def test_taken_email_is_409_1005_whatever_its_case(api):
    assert (await register(api, "bob@example.com")).status == 201
    for email in ("bob@example.com", "BOB@Example.com", " bob@example.com"):
        response = await register(api, email)
        assert_error(response, 409, 1005, "POST /v1/users")
        assert response.body["message"] == "the e-mail is already registered"


@both_backends
@pytest.mark.parametrize(("local", "octets"), [("a" * 64, None), ("a" * 65, 65), ("é" * 32, None), ("é" * 33, 66),
                                               ("ｂ" * 21, None), ("ｂ" * 22, 66)])
@pytest.mark.gen_test
async def test_the_part_before_the_at_sign_is_at_most_64_octets(api, local, octets):
    response = await register(api, f"{local}@example.com")
    if octets is None:
        assert response.status == 201, response.body
        assert response.body["data"]["email"] == f"{local}@example.com"
        return
    assert_error(response, 400, 1001, "POST /v1/users")
    assert response.body["errors"] == [{"field": "email", "message": "value is not a valid email address: the part "
                                                                     f"before the @-sign is {octets} octets (UTF-8), "
                                                                     "at most 64"}]
    chinese = await api.post("/v1/users", json={"email": f"{local}@example.com", "password": PASSWORD,
                                                "nickname": "x"}, headers={"Accept-Language": "zh-CN"})
    assert_error(chinese, 400, 1001, "POST /v1/users")
    assert chinese.body["errors"] == [{"field": "email", "message": "不是有效的电子邮件地址"}]


@both_backends
@pytest.mark.parametrize("lookalike", [
    "ｂｏｂ@example.com",  # fullwidth local part
    "bob@ｅｘａｍｐｌｅ.ｃｏｍ",  # fullwidth domain
    "b\u043eb@example.com",  # Cyrillic 'о' in the local part
    "bob@ex\u0430mple.com",  # Cyrillic 'а' in the domain
    "ＢＯＢ@Example.COM",  # fullwidth capitals, mixed case
    "B\u041eB@EXAMPLE.com",  # a Cyrillic capital 'О' between Latin capitals
    "\U0001d41b\U0001d428\U0001d41b@example.com",  # mathematical bold letters (NFKC folds them)
])
@pytest.mark.gen_test
async def test_a_lookalike_of_a_registered_email_is_refused_as_the_email_itself_is(api, app, lookalike):
    assert (await register(api, "bob@example.com")).status == 201
    taken = await register(api, "bob@example.com")
    assert_error(taken, 409, 1005, "POST /v1/users")
    response = await register(api, lookalike)
    assert_error(response, 409, 1005, "POST /v1/users")
    assert response.body == taken.body  # the same answer: the rule tells no more about who is registered
    assert await find_user_by_email(app.db, email=lookalike) is None


@both_backends
@pytest.mark.gen_test
async def test_the_ascii_address_is_refused_once_its_lookalike_holds_the_key(api):
    assert (await register(api, "p\u0430ypal@example.com")).status == 201  # Cyrillic 'а' first
    for email in ("paypal@example.com", "PAYPAL@example.com", "ｐａｙｐａｌ@example.com"):
        assert_error(await register(api, email), 409, 1005, "POST /v1/users")


@both_backends
@pytest.mark.gen_test
async def test_different_addresses_that_only_resemble_each_other_loosely_are_accepted(api):
    for email in ("carol@example.com", "carol2@example.com", "caro@example.com", "carol@example.org",
                  "zoe@example.com", "zoë@example.com"):  # accents are distinct letters, as since core 0002
        created = await register(api, email)
        assert created.status == 201, (email, created.body)
        assert created.body["data"]["email"] == email


@both_backends
@pytest.mark.gen_test
async def test_patch_me_changes_the_nickname(api, app):
    user, token = await user_with_token(app)
    response = await api.patch("/v1/users/me", json={"nickname": "Neo"}, token=token)
    assert response.status == 200
    assert response.body["data"]["nickname"] == "Neo"
    assert response.body["data"]["id"] == user.id
    me = await api.get("/v1/users/me", token=token)  # a nickname change keeps the token
    assert me.status == 200
    assert me.body["data"]["nickname"] == "Neo"
    nothing = await api.patch("/v1/users/me", json={}, token=token)
    assert_error(nothing, 400, 1001, "PATCH /v1/users/me")
    escalate = await api.patch("/v1/users/me", json={"role": "admin"}, token=token)
    assert_error(escalate, 400, 1001, "PATCH /v1/users/me")
    assert escalate.body["errors"] == [{"field": "role", "message": "read-only field"}]


@both_backends
@pytest.mark.parametrize("common", ["12345678", "Password1", " QWERTYUIOP ", "iloveyou",
                                    "Wolverin"])  # the last is on the breached list only
@pytest.mark.gen_test
async def test_common_passwords_are_refused_with_the_reason_everywhere_a_password_is_set(api, app, common):
    reason = [{"field": "password", "message": "is one of the 55,860 most common or breached passwords; "
                                               "choose another"}]
    registered = await register(api, unique_email(), password=common)
    assert_error(registered, 400, 1001, "POST /v1/users")
    assert registered.body["errors"] == reason
    user = await create_user(app)
    token = (await api.login(user.email)).body["data"]["token"]
    changed = await api.patch("/v1/users/me", json={"password": common, "current_password": PASSWORD}, token=token)
    assert_error(changed, 400, 1001, "PATCH /v1/users/me")
    assert changed.body["errors"] == reason
    reset = await api.post("/v1/password-resets/confirm", json={"token": "t" * 43, "password": common})
    assert_error(reset, 400, 1001, "POST /v1/password-resets/confirm")
    assert reset.body["errors"] == reason
    assert (await api.get("/v1/users/me", token=token)).status == 200  # nothing was changed


@pytest.mark.parametrize("email, password", [
    ("jane.doorman@example.com", "my-Jane.Doorman-secret"),  # the e-mail's name, whatever the separators
    ("jane.doorman@example.com", "zz-doorman-2031"),  # one part of it
    ("ann@example.com", "My Pet-API password"),  # the service's name
    ("ann@example.com", "petapi-is-great"),
])
@pytest.mark.gen_test
async def test_passwords_with_context_words_are_refused_with_a_field_error(api, app, email, password):
    reason = [{"field": "password", "message": "must not contain the service's name or your e-mail's name"}]
    registered = await register(api, email, password=password)
    assert_error(registered, 400, 1001, "POST /v1/users")
    assert registered.body["errors"] == reason
    user = await create_user(app, email=email)
    token = (await api.login(user.email)).body["data"]["token"]
    changed = await api.patch("/v1/users/me", json={"password": password, "current_password": PASSWORD}, token=token)
    assert_error(changed, 400, 1001, "PATCH /v1/users/me")
    assert changed.body["errors"] == reason
    assert (await api.get("/v1/users/me", token=token)).status == 200  # nothing was changed, nothing revoked
    with pytest.raises(InvalidParameter) as refused:
        await create_or_promote_admin(app.db, app.accounts, email=email, nickname="Tester", password=password)
    assert refused.value.errors == reason
    assert (await api.login(user.email)).status == 201  # still the old password, still a user


@pytest.mark.gen_test
async def test_short_name_parts_and_other_words_are_allowed(api):
    registered = await register(api, "al.bo@example.com", password="al-likes-long-phrases", nickname="Al")
    assert registered.status == 201, registered.body
    assert context_words(email="Al.Bo-Smith@example.com") == {"petapi", "albosmith", "smith"}


@pytest.mark.gen_test
async def test_the_nickname_is_no_context_word_so_the_benchmarks_registration_is_accepted(api):
    # What ../shared/bench/compare.py registers: a display name inside the password is not the sign-in name.
    email = unique_email("bench")
    registered = await register(api, email, password="bench-password-1", nickname="bench")
    assert registered.status == 201, registered.body
    assert registered.body["data"]["nickname"] == "bench"
    login = await api.post("/v1/tokens", json={"account": email, "secret": "bench-password-1"})
    assert login.status == 201, login.body
    assert login.body["data"]["token"]


def test_the_shipped_common_password_list_has_over_ten_thousand_entries():
    listed = common_passwords()
    assert len(listed) == 55_860  # Django's 19,640 most common and zxcvbn-ts's 49,233 from Xato's leaked 10 million
    assert {"123456", "password", "qwerty", "iloveyou"} <= listed
    assert all(p == p.strip().lower() for p in listed)


@both_backends
@pytest.mark.gen_test
async def test_password_change_needs_the_current_password_and_revokes_earlier_tokens(api, app):
    user = await create_user(app, email=unique_email())
    old = (await api.login(user.email)).body["data"]["token"]
    missing = await api.patch("/v1/users/me", json={"password": "brand-new-secret"}, token=old)
    assert_error(missing, 400, 1001, "PATCH /v1/users/me")
    assert missing.body["errors"] == [{"field": "current_password",
                                       "message": "current_password is required to change the password"}]
    wrong = await api.patch("/v1/users/me", json={"password": "brand-new-secret", "current_password": "nope-nope"},
                            token=old)
    assert_error(wrong, 400, 1001, "PATCH /v1/users/me")
    assert wrong.body["errors"] == [{"field": "current_password", "message": "does not match"}]
    assert (await api.get("/v1/users/me", token=old)).status == 200  # failed attempts revoke nothing

    changed = await api.patch("/v1/users/me", json={"password": "brand-new-secret", "current_password": PASSWORD},
                              token=old)
    assert changed.status == 200, changed.body
    assert changed.body["data"]["email"] == user.email
    revoked = await api.get("/v1/users/me", token=old)
    assert_error(revoked, 401, 10033, "GET /v1/users/me")
    assert_error(await api.login(user.email), 401, 1003, "POST /v1/tokens")
    fresh = await api.login(user.email, "brand-new-secret")
    assert fresh.status == 201
    me = await api.get("/v1/users/me", token=fresh.body["data"]["token"])
    assert me.status == 200
    assert me.body["data"]["id"] == user.id


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/users"), ("GET", "/v1/users/1"),
                                              ("PATCH", "/v1/users/1")])
@pytest.mark.gen_test
async def test_admin_routes_refuse_a_user_token(api, app, method, path):
    _, token = await user_with_token(app)
    response = await api.request(method, path, json={"role": "admin"} if method == "PATCH" else None, token=token)
    assert_error(response, 403, 1004, f"{method} {path}")
    assert response.body["message"] == "missing scope: users:admin"
    anonymous = await api.request(method, path, json={"role": "admin"} if method == "PATCH" else None)
    assert_error(anonymous, 401, 1003, f"{method} {path}")


@both_backends
@pytest.mark.gen_test
async def test_admin_lists_users_with_a_page(api, app):
    admin, token = await user_with_token(app, role="admin")
    others = [await create_user(app, nickname=f"n{i}") for i in range(4)]
    response = await api.get("/v1/users?limit=2&offset=1", token=token)
    assert response.status == 200, response.body
    assert response.body["page"] == {"limit": 2, "offset": 1, "total": 5,
                                     "next_cursor": response.body["page"]["next_cursor"]}
    assert response.body["page"]["next_cursor"] is not None
    assert [u["id"] for u in response.body["data"]] == [others[0].id, others[1].id]
    assert set(response.body["data"][0]) == {"id", "email", "nickname", "role", "created_at", "email_verified",
                                             "disabled"}
    default = await api.get("/v1/users", token=token)
    assert default.body["page"] == {"limit": 20, "offset": 0, "total": 5, "next_cursor": None}
    assert [u["id"] for u in default.body["data"]] == [admin.id] + [u.id for u in others]
    beyond = await api.get("/v1/users?offset=50", token=token)
    assert beyond.status == 200
    assert beyond.body["data"] == []
    assert beyond.body["page"] == {"limit": 20, "offset": 50, "total": 5, "next_cursor": None}
    for bad in ("limit=0", "limit=101", "offset=-1", "limit=ten"):
        invalid = await api.get(f"/v1/users?{bad}", token=token)
        assert_error(invalid, 400, 1001, "GET /v1/users")
        assert invalid.body["errors"][0]["field"] == bad.split("=")[0]


@both_backends
@pytest.mark.gen_test
async def test_admin_reads_one_user_or_404(api, app):
    _, token = await user_with_token(app, role="admin")
    user = await create_user(app, nickname="target")
    response = await api.get(f"/v1/users/{user.id}", token=token)
    assert response.status == 200
    assert response.body["data"]["nickname"] == "target"
    assert response.body["data"]["disabled"] is False
    for missing in (user.id + 1000, 2**63, 10**19):
        absent = await api.get(f"/v1/users/{missing}", token=token)
        assert_error(absent, 404, 1002, f"GET /v1/users/{missing}")


@both_backends
@pytest.mark.gen_test
async def test_admin_promotes_and_disables(api, app):
    _, admin_token = await user_with_token(app, role="admin")
    user = await create_user(app)
    user_token = (await api.login(user.email)).body["data"]["token"]

    promoted = await api.patch(f"/v1/users/{user.id}", json={"role": "admin"}, token=admin_token)
    assert promoted.status == 200
    assert promoted.body["data"]["role"] == "admin"
    assert_error(await api.get("/v1/users/me", token=user_token), 401, 10033, "GET /v1/users/me")
    as_admin = await api.login(user.email)
    assert "users:admin" in as_admin.body["data"]["scopes"]
    assert (await api.get("/v1/users", token=as_admin.body["data"]["token"])).status == 200

    disabled = await api.patch(f"/v1/users/{user.id}", json={"disabled": True}, token=admin_token)
    assert disabled.status == 200
    assert disabled.body["data"]["disabled"] is True
    revoked = await api.get("/v1/users/me", token=as_admin.body["data"]["token"])
    assert_error(revoked, 401, 10033, "GET /v1/users/me")
    refused = await api.login(user.email)
    assert_error(refused, 401, 1003, "POST /v1/tokens")
    assert refused.body["message"] == "wrong account or password"

    enabled = await api.patch(f"/v1/users/{user.id}", json={"disabled": False}, token=admin_token)
    assert enabled.body["data"]["disabled"] is False
    assert (await api.login(user.email)).status == 201

    for body, field in (({"role": "wizard"}, "role"), ({"role": "Admin!"}, "role"), ({}, "body"),
                        ({"role": None}, "body"), ({"disabled": "maybe"}, "disabled"),
                        ({"email": "x@example.com"}, "email"),
                        *(({"disabled": not_a_bool}, "disabled") for not_a_bool in ("no", 0, "off", "yes", 1, "true"))):
        bad = await api.patch(f"/v1/users/{user.id}", json=body, token=admin_token)
        assert_error(bad, 400, 1001, f"PATCH /v1/users/{user.id}")
        assert bad.body["errors"][0]["field"] == field
    unchanged = await api.get(f"/v1/users/{user.id}", token=admin_token)
    assert unchanged.body["data"]["disabled"] is False  # "yes" and 1 disabled nobody
    absent = await api.patch(f"/v1/users/{user.id + 1000}", json={"role": "user"}, token=admin_token)
    assert_error(absent, 404, 1002, f"PATCH /v1/users/{user.id + 1000}")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_admin_patch_with_the_accounts_own_values_changes_nothing(api, app):
    # It revoked every token of the account (and was told as a credentials change) though nothing changed.
    admin = await create_user(app, role="admin")
    admin_token = await api.token(admin.email)
    user = await create_user(app, nickname="same")
    user_token = await api.token(user.email)
    before = (await api.get(f"/v1/users/{user.id}", token=admin_token)).body["data"]
    for body in ({"disabled": False}, {"role": "user"}, {"role": "user", "disabled": False}):
        same = await api.patch(f"/v1/users/{user.id}", json=body, token=admin_token)
        assert (same.status, same.body) == (200, {"code": 200, "data": before, "message": "ok"}), body
        still = await api.get("/v1/users/me", token=user_token)
        assert (still.status, still.body["data"]["id"]) == (200, user.id), body  # no token revoked
    own = await api.patch(f"/v1/users/{admin.id}", json={"role": "admin", "disabled": False}, token=admin_token)
    assert (own.status, own.body["data"]["role"], own.body["data"]["disabled"]) == (200, "admin", False)
    assert (await api.get("/v1/users", token=admin_token)).status == 200
    promoted = await api.patch(f"/v1/users/{user.id}", json={"role": "admin", "disabled": False}, token=admin_token)
    assert (promoted.status, promoted.body["data"]["role"]) == (200, "admin")
    assert_error(await api.get("/v1/users/me", token=user_token), 401, 10033, "GET /v1/users/me")


@both_backends
@pytest.mark.parametrize("config_overrides", [{"require_verified_email": True}], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_create_admin_makes_a_verified_admin_that_writes_with_require_verified_email(api, app):
    # main.py create-admin's administrator was unverified: without pets:write, yet able to disable and delete.
    everything = ["pets:admin", "pets:read", "pets:write", "users:admin", "users:me"]
    created, is_new = await create_or_promote_admin(app.db, app.accounts, email=unique_email("boss"), nickname="boss",
                                                    password="admin-password-42")
    assert (is_new, created.email_verified) == (True, True)
    user = await create_user(app)  # registered, never verified
    promoted, is_new = await create_or_promote_admin(app.db, app.accounts, email=user.email, nickname="x",
                                                     password="admin-password-42")
    assert (is_new, promoted.email_verified) == (False, True)
    for admin in (created, promoted):
        pair = (await api.login(admin.email, "admin-password-42")).body["data"]
        assert pair["scopes"] == everything
        pet = await api.post("/v1/pets", json={"name": "Rex", "species": "dog"}, token=pair["token"])
        assert (pet.status, pet.body["data"]["name"]) == (201, "Rex"), pet.body
        shown = await api.get(f"/v1/users/{admin.id}", token=pair["token"])
        assert (shown.body["data"]["email_verified"], shown.body["data"]["role"]) == (True, "admin")
    first = await app.db.fetch_one("SELECT email_verified_at FROM users WHERE id = %s", (created.id,))
    await create_or_promote_admin(app.db, app.accounts, email=created.email, nickname="boss",
                                  password="rotated-pass-42")
    again = await app.db.fetch_one("SELECT email_verified_at FROM users WHERE id = %s", (created.id,))
    assert first == again  # verified once: the first time stays


@pytest.mark.gen_test
async def test_a_token_minted_for_a_user_that_does_not_exist_reads_404(api, app):
    token = token_for(app, 987654321, ["users:me"])
    response = await api.get("/v1/users/me", token=token)
    assert_error(response, 404, 1002, "GET /v1/users/me")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_admin_cannot_demote_or_disable_itself_nor_the_last_active_admin(api, app):
    admin, admin_token = await user_with_token(app, role="admin")
    for body in ({"role": "user"}, {"disabled": True}, {"role": "admin", "disabled": True}):
        refused = await api.patch(f"/v1/users/{admin.id}", json=body, token=admin_token)
        assert_error(refused, 409, 1005, f"PATCH /v1/users/{admin.id}",
                     "an administrator cannot demote or disable itself")
    kept = await api.patch(f"/v1/users/{admin.id}", json={"role": "admin", "disabled": False}, token=admin_token)
    assert (kept.status, kept.body["data"]["role"], kept.body["data"]["disabled"]) == (200, "admin", False)
    # a caller allowed to manage users who is not itself an active administrator (a role the map grants
    # users:admin to, here a minted token) cannot take the last one away either
    helper = await create_user(app)
    helper_token = token_for(app, helper.id, ADMIN_SCOPES)
    for body in ({"role": "user"}, {"disabled": True}):
        last = await api.patch(f"/v1/users/{admin.id}", json=body, token=helper_token)
        assert_error(last, 409, 1005, f"PATCH /v1/users/{admin.id}",
                     "the last active administrator cannot be demoted or disabled")
    zh = await api.patch(f"/v1/users/{admin.id}", json={"role": "user"}, token=helper_token,
                         headers={"Accept-Language": "zh-CN"})
    assert_error(zh, 409, 1005, f"PATCH /v1/users/{admin.id}", "不能降级或停用最后一个有效的管理员")
    second = await create_user(app, role="admin")
    demoted = await api.patch(f"/v1/users/{admin.id}", json={"role": "user"}, token=helper_token)
    assert (demoted.status, demoted.body["data"]["role"]) == (200, "user")
    listed = await api.get(f"/v1/users/{second.id}", token=helper_token)
    assert (listed.body["data"]["role"], listed.body["data"]["disabled"]) == ("admin", False)


@both_backends
@pytest.mark.gen_test(timeout=120)
async def test_two_admins_demoting_or_disabling_each_other_at_once_leave_one_admin(api, app):
    for body in ({"role": "user"}, {"disabled": True}, {"role": "user"}, {"disabled": True}):
        first, second = await create_user(app, role="admin"), await create_user(app, role="admin")
        first_token, second_token = await api.token(first.email), await api.token(second.email)
        await app.db.execute("UPDATE users SET role = 'user' WHERE role = 'admin' AND id NOT IN (%s, %s)",
                             (first.id, second.id))
        answers = await asyncio.gather(api.patch(f"/v1/users/{second.id}", json=body, token=first_token),
                                       api.patch(f"/v1/users/{first.id}", json=body, token=second_token))
        assert sorted(a.status for a in answers) in ([200, 401], [200, 409]), [a.body for a in answers]
        loser = next(a for a in answers if a.status != 200)
        # the loser was either refused (last admin) or its token was already revoked by the winner's change
        assert loser.body["error_code"] in (1005, 10033), loser.body
        rows = await app.db.fetch_all("SELECT id FROM users WHERE role = 'admin' AND disabled = 0")
        assert len(rows) == 1, rows


@pytest.mark.parametrize("config_overrides", [{"plugin_settings": {"accounts": {"registrations_per_address": 3}}}])
@pytest.mark.gen_test(timeout=60)
async def test_registrations_are_throttled_per_client_address(api, app):
    invalid = await register(api, unique_email("flood"), password="short")  # refused before it is counted
    assert_error(invalid, 400, 1001, "POST /v1/users")
    for _ in range(3):
        assert (await register(api, unique_email("flood"))).status == 201
    refused = await register(api, unique_email("flood"))
    assert_error(refused, 429, 1006, "POST /v1/users", "too many requests for this account or address, try again later")
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    zh = await api.post("/v1/users", json={"email": unique_email("flood"), "password": PASSWORD, "nickname": "x"},
                        headers={"Accept-Language": "zh-CN"})
    assert_error(zh, 429, 1006, "POST /v1/users", "该账户或地址的请求过多，请稍后再试")
    assert (await app.db.fetch_one("SELECT COUNT(*) FROM users"))[0] == 3  # nothing written for the refused ones
    user = await create_user(app)
    assert (await api.login(user.email)).status == 201  # logging in from that address goes on


@both_backends
@pytest.mark.parametrize("config_overrides", [{"plugin_settings": {"accounts": {"registrations_per_address": 3}}}])
@pytest.mark.gen_test(timeout=60)
async def test_failed_registrations_with_an_idempotency_key_are_counted_as_those_without(api, app):
    taken = unique_email("taken")
    assert (await register(api, taken)).status == 201
    account = {"email": taken, "password": PASSWORD, "nickname": "x"}
    keys = [f"taken-{uuid.uuid4().hex}" for _ in range(3)]
    for key in keys[:2]:  # the key's reservation rolls back with the 409; the count does not
        again = await api.post("/v1/users", json=account, headers={"Idempotency-Key": key})
        assert_error(again, 409, 1005, "POST /v1/users", "the e-mail is already registered")
    refused = await api.post("/v1/users", json=account, headers={"Idempotency-Key": keys[2]})
    assert_error(refused, 429, 1006, "POST /v1/users", "too many requests for this account or address, try again later")
    assert set(refused.body) == {"error_code", "message", "request"}
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    flood = unique_email("flood")
    keyless = await register(api, flood)
    assert_error(keyless, 429, 1006, "POST /v1/users", "too many requests for this account or address, try again later")
    stored = await app.db.fetch_one("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key IN (%s, %s, %s)", tuple(keys))
    assert stored[0] == 0
    assert await find_user_by_email(app.db, email=flood) is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_a_keyed_registration_hashes_its_password_before_holding_the_database(api, app):
    # A registration with an Idempotency-Key runs in the key's transaction; on SQLite that holds the one
    # connection, so hashing the password in it (argon2: tens of milliseconds in production) stalled every other
    # request of the server for as long. The hash is made before the key's transaction begins.
    passwords, hashing, release = app.accounts.passwords, asyncio.Event(), asyncio.Event()
    real_hash = passwords.hash

    async def held_hash(password: str) -> str:
        hashing.set()
        await release.wait()
        return await real_hash(password)

    passwords.hash = held_hash
    email = unique_email("keyed")
    registering = asyncio.ensure_future(api.post("/v1/users", headers={"Idempotency-Key": uuid.uuid4().hex},
                                                 json={"email": email, "password": PASSWORD, "nickname": "k"}))
    await asyncio.wait_for(hashing.wait(), 10)
    try:
        ready = await asyncio.wait_for(api.get("/v1/health/ready"), 5)  # needs the database while the hash runs
    finally:
        release.set()
    assert (ready.status, ready.body) == (200, {"code": 200, "data": {"status": "ok"}, "message": "ok"})
    created = await registering
    assert created.status == 201, created.body
    assert created.body["data"]["email"] == email
    assert (await api.login(email)).status == 201

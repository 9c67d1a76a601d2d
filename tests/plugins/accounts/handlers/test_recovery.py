"""Password reset and e-mail verification over HTTP, with the messages delivered over SMTP to a real local
server (aiosmtpd), on MariaDB and SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import PASSWORD, Api, assert_error, both_backends, create_user, record_round_trips, unique_email
from tests.mail import Inbox, mail_settings, outbox_settled, token_in

NEW_PASSWORD = "a-brand-new-passphrase"


@pytest.fixture
def config_overrides(request: pytest.FixtureRequest, smtp_server: tuple[Inbox, int]) -> dict[str, Any]:
    return {"plugin_settings": mail_settings(smtp_server[1], **getattr(request, "param", {}))}


@pytest.fixture
def inbox(smtp_server: tuple[Inbox, int]) -> Inbox:
    return smtp_server[0]


async def login(api: Api, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await api.login(email, password)
    assert response.status == 201, response.body
    return response.body["data"]


@pytest.mark.gen_test(timeout=60)
async def test_a_reset_to_a_password_with_the_accounts_name_is_refused_and_the_token_stays_usable(api, app, inbox):
    user = await create_user(app, email="whiskers.owner@example.com")
    assert (await api.post("/v1/password-resets", json={"email": user.email})).status == 202
    token = token_in((await inbox.wait_for(user.email))[0])
    refused = await api.post("/v1/password-resets/confirm", json={"token": token, "password": "Whiskers.Owner-2031"})
    assert_error(refused, 400, 1001, "POST /v1/password-resets/confirm")
    assert refused.body["errors"] == [{"field": "password", "message": "must not contain the service's name or "
                                                                       "your e-mail's name"}]
    assert (await api.login(user.email)).status == 201  # unchanged
    done = await api.post("/v1/password-resets/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert done.status == 200, done.body


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_reset_arrives_over_smtp_sets_the_password_and_ends_every_session(api, app, inbox):
    user = await create_user(app)
    phone, laptop = await login(api, user.email), await login(api, user.email)
    asked = await api.post("/v1/password-resets", json={"email": user.email.upper()})
    assert (asked.status, asked.body) == (202, {"code": 202, "data": None, "message": "ok"})
    [message] = await inbox.wait_for(user.email)
    assert message["Subject"] == "Reset your pet-api password"
    assert "https://app.example.com/reset-password?token=" in message.get_content()
    token = token_in(message)
    stored = await app.db.fetch_all("SELECT token_hash FROM account_tokens WHERE purpose = 'reset'")
    assert len(stored) == 1 and token not in str(stored)  # only its hash is kept
    await outbox_settled(app.db)
    body = await app.db.fetch_one("SELECT body FROM outbox WHERE user_id = %s", (user.id,))
    assert body is not None and body[0] == ""  # a sent message's text (the token) is not kept

    done = await api.post("/v1/password-resets/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert (done.status, done.body["data"]["id"], done.body["data"]["email_verified"]) == (200, user.id, True)
    for pair in (phone, laptop):
        assert_error(await api.get("/v1/users/me", token=pair["token"]), 401, 10033, "GET /v1/users/me")
        assert_error(await api.post("/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]}), 401, 10033,
                     "POST /v1/tokens/refresh")
    assert_error(await api.login(user.email), 401, 1003, "POST /v1/tokens")
    assert (await api.login(user.email, NEW_PASSWORD)).status == 201

    again = await api.post("/v1/password-resets/confirm", json={"token": token, "password": "yet-another-one-1"})
    assert_error(again, 401, 10031, "POST /v1/password-resets/confirm", "token is invalid")
    assert (await api.login(user.email, NEW_PASSWORD)).status == 201  # the reused token changed nothing


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_expired_and_superseded_reset_tokens_change_nothing(api, app, inbox):
    user, other = await create_user(app), await create_user(app)
    for _ in range(2):
        assert (await api.post("/v1/password-resets", json={"email": user.email})).status == 202
    assert (await api.post("/v1/password-resets", json={"email": other.email})).status == 202
    first, second = [token_in(m) for m in await inbox.wait_for(user.email, 2)]
    [other_message] = await inbox.wait_for(other.email)

    await app.db.execute("UPDATE account_tokens SET expires_at_ms = 1 WHERE user_id = %s", (other.id,))
    expired = await api.post("/v1/password-resets/confirm", json={"token": token_in(other_message),
                                                                   "password": NEW_PASSWORD})
    assert_error(expired, 401, 10032, "POST /v1/password-resets/confirm", "token is expired")
    assert (await api.login(other.email)).status == 201  # still the old password

    assert (await api.post("/v1/password-resets/confirm", json={"token": second, "password": NEW_PASSWORD})).status \
        == 200
    superseded = await api.post("/v1/password-resets/confirm", json={"token": first, "password": "third-password-x"})
    assert_error(superseded, 401, 10031, "POST /v1/password-resets/confirm")
    assert (await api.login(user.email, NEW_PASSWORD)).status == 201
    assert (await api.login(other.email)).status == 201  # one account's token never touches another


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_unknown_or_expired_reset_token_is_refused_before_any_password_is_hashed(api, app, inbox, monkeypatch):
    hashed: list[str] = []
    real_hash = app.accounts.passwords.hash

    async def counting_hash(password: str) -> str:
        hashed.append(password)
        return await real_hash(password)

    user = await create_user(app)
    monkeypatch.setattr(app.accounts.passwords, "hash", counting_hash)
    assert (await api.post("/v1/password-resets", json={"email": user.email})).status == 202
    token = token_in((await inbox.wait_for(user.email))[0])
    path = "/v1/password-resets/confirm"
    bogus = await api.post(path, json={"token": "bogus-" + "x" * 43, "password": NEW_PASSWORD})
    assert_error(bogus, 401, 10031, f"POST {path}", "token is invalid")
    assert set(bogus.body) == {"error_code", "message", "request"}
    await app.db.execute("UPDATE account_tokens SET expires_at_ms = 1 WHERE user_id = %s", (user.id,))
    expired = await api.post(path, json={"token": token, "password": NEW_PASSWORD})
    assert_error(expired, 401, 10032, f"POST {path}", "token is expired")
    assert set(expired.body) == {"error_code", "message", "request"}
    assert hashed == []  # neither cost argon2 work
    await app.db.execute("UPDATE account_tokens SET expires_at_ms = %s WHERE user_id = %s",
                         (2 ** 62, user.id))
    done = await api.post(path, json={"token": token, "password": NEW_PASSWORD})
    assert done.status == 200, done.body
    assert hashed == [NEW_PASSWORD]
    assert (await api.login(user.email, NEW_PASSWORD)).status == 201


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_unknown_and_known_addresses_get_identical_answers_and_only_the_known_one_gets_mail(api, app, inbox):
    user = await create_user(app)
    nobody = unique_email("nobody")
    known = await api.post("/v1/password-resets", json={"email": user.email})
    unknown = await api.post("/v1/password-resets", json={"email": nobody})
    assert (known.status, known.raw) == (unknown.status, unknown.raw)
    assert (known.status, known.raw) == (202, b'{"code":202,"data":null,"message":"ok"}')
    await inbox.wait_for(user.email)
    assert inbox.to(nobody) == []
    assert (await app.db.fetch_one("SELECT COUNT(*) FROM outbox"))[0] == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_known_address_costs_the_same_round_trips_as_an_unknown_one(api, app, inbox):
    """No quick exit for an unknown address (its answer would come sooner): both run the same statements in the
    same round trips; a known one's token and message ride with the COMMIT."""
    user = await create_user(app)
    trips = record_round_trips(app, requests_only=True)
    assert (await api.post("/v1/password-resets", json={"email": user.email})).status == 202
    known = list(trips)
    trips.clear()
    assert (await api.post("/v1/password-resets", json={"email": unique_email("nobody")})).status == 202
    assert len(known) == len(trips), (known, trips)
    assert known[:-1] == trips[:-1]
    writes = [statement.split(" (")[0] for statement in known[-1][:-1]]
    assert writes == ["INSERT INTO account_tokens", "INSERT INTO outbox"] and known[-1][-1:] == trips[-1] == ["COMMIT"]
    await inbox.wait_for(user.email)
    assert (await app.db.fetch_one("SELECT COUNT(*) FROM outbox"))[0] == 1


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_reset_requests_are_throttled_per_address_of_mail(api, app, inbox):
    user = await create_user(app)
    for _ in range(3):  # mail_requests_per_account
        assert (await api.post("/v1/password-resets", json={"email": user.email})).status == 202
    throttled = await api.post("/v1/password-resets", json={"email": user.email})
    assert_error(throttled, 429, 1006, "POST /v1/password-resets")
    assert int(throttled.headers["Retry-After"]) > 0
    await inbox.wait_for(user.email, 3)
    assert (await app.db.fetch_one("SELECT COUNT(*) FROM outbox"))[0] == 3


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_registration_sends_a_verification_in_the_users_language_and_confirming_verifies(api, app, inbox):
    email = unique_email()
    created = await api.post("/v1/users", json={"email": email, "password": PASSWORD, "nickname": "Mei"},
                             headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert (created.status, created.body["data"]["email_verified"]) == (201, False), created.body
    [message] = await inbox.wait_for(email)
    assert message["Subject"] == "确认您在 pet-api 的电子邮件地址"
    assert "Mei，您好" in message.get_content()
    token = token_in(message)
    bad = await api.post("/v1/email-verifications/confirm", json={"token": "x" * 43})
    assert_error(bad, 401, 10031, "POST /v1/email-verifications/confirm", "token is invalid")
    confirmed = await api.post("/v1/email-verifications/confirm", json={"token": token})
    assert (confirmed.status, confirmed.body["data"]["email_verified"]) == (200, True), confirmed.body
    assert_error(await api.post("/v1/email-verifications/confirm", json={"token": token}), 401, 10031,
                 "POST /v1/email-verifications/confirm")
    pair = await login(api, email)
    me = await api.get("/v1/users/me", token=pair["token"])
    assert me.body["data"]["email_verified"] is True
    resend = await api.post("/v1/users/me/email-verification", token=pair["token"])
    assert_error(resend, 409, 1005, "POST /v1/users/me/email-verification", "the e-mail is already verified")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_verification_can_be_sent_again_throttled(api, app, inbox):
    user = await create_user(app)
    pair = await login(api, user.email)
    for _ in range(3):
        sent = await api.post("/v1/users/me/email-verification", token=pair["token"])
        assert (sent.status, sent.body["data"]) == (202, None), sent.body
    assert_error(await api.post("/v1/users/me/email-verification", token=pair["token"]), 429, 1006,
                 "POST /v1/users/me/email-verification")
    messages = await inbox.wait_for(user.email, 3)
    assert [m["Subject"] for m in messages] == ["Confirm your e-mail address for pet-api"] * 3


@both_backends
@pytest.mark.parametrize("config_overrides", [{"require_verified_email": True}], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_with_require_verified_email_an_unverified_account_reads_but_cannot_write(api, app, inbox):
    email = unique_email()
    assert (await api.post("/v1/users", json={"email": email, "password": PASSWORD, "nickname": "U"})).status == 201
    pair = await login(api, email)
    assert pair["scopes"] == ["pets:read", "users:me"]
    assert (await api.get("/v1/pets", token=pair["token"])).status == 200
    refused = await api.post("/v1/pets", json={"name": "Rex", "species": "dog"}, token=pair["token"])
    assert_error(refused, 403, 1004, "POST /v1/pets", "missing scope: pets:write")

    [message] = await inbox.wait_for(email)
    assert (await api.post("/v1/email-verifications/confirm", json={"token": token_in(message)})).status == 200
    renewed = await api.post("/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]})
    assert renewed.body["data"]["scopes"] == ["pets:read", "pets:write", "users:me"]
    created = await api.post("/v1/pets", json={"name": "Rex", "species": "dog"}, token=renewed.body["data"]["token"])
    assert created.status == 201, created.body

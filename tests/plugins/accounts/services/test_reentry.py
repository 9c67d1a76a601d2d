"""A password typed again (second factor on or off, a new password, deleting the account) counts like a login's:
a stolen access token cannot be used to try passwords, or a second factor's codes, without bound."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest

from tests.factories import PASSWORD, Api, assert_error, both_backends, create_user, hash_queue_full

pytestmark = both_backends
LIMIT = 3
TOO_MANY = "too many wrong passwords, try again later"
HASHES_WAITING = "too many password hashes waiting, try again later"


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"login_max_failures": LIMIT}


async def token_of(api: Api, email: str) -> str:
    logged_in = await api.login(email)
    assert logged_in.status == 201, logged_in.body
    return str(logged_in.body["data"]["token"])


# method, path, the body with a wrong password, the body with the right one, the wrong answer's status and code
REENTRIES = [
    ("POST", "/v1/users/me/mfa", {"password": "not-the-password"}, {"password": PASSWORD}, 403, 1004),
    ("PATCH", "/v1/users/me", {"password": "brand-new-phrase-1", "current_password": "not-the-password"},
     {"password": "brand-new-phrase-1", "current_password": PASSWORD}, 400, 1001),
    ("DELETE", "/v1/users/me", {"password": "not-the-password"}, {"password": PASSWORD}, 403, 1004),
    ("DELETE", "/v1/users/me/mfa", {"password": "not-the-password", "code": "123456"},
     {"password": PASSWORD, "code": "123456"}, 403, 1004),
]


@pytest.mark.parametrize("method, path, wrong, right, status, code", REENTRIES)
@pytest.mark.gen_test(timeout=30)
async def test_wrong_passwords_typed_again_are_throttled_like_logins(api, app, method, path, wrong, right, status,
                                                                      code):
    user = await create_user(app)
    token = await token_of(api, user.email)
    for _ in range(LIMIT):
        assert_error(await api.request(method, path, json=wrong, token=token), status, code, f"{method} {path}")
    refused = await api.request(method, path, json=right, token=token)  # even the right one, now
    assert_error(refused, 429, 1006, f"{method} {path}", TOO_MANY)
    assert 0 < int(refused.headers["Retry-After"]) <= app.config.login_window_seconds
    # the account's logins are held back too: the guesses count against the same limit
    assert_error(await api.login(user.email), 429, 1006, "POST /v1/tokens", "too many failed logins, try again later")
    me = await api.get("/v1/users/me", token=token)  # nothing was changed or deleted, the token still works
    assert (me.status, me.body["data"]["email"]) == (200, user.email)
    stored = await app.db.fetch_one("SELECT password_hash FROM users WHERE id = %s", (user.id,))
    assert stored is not None and stored[0] == user.password_hash


@pytest.mark.gen_test(timeout=30)
async def test_the_right_password_typed_again_forgives_the_earlier_failures(api, app):
    user = await create_user(app)
    token = await token_of(api, user.email)
    for _ in range(2):
        for _ in range(LIMIT - 1):
            wrong = await api.post("/v1/users/me/mfa", json={"password": "not-the-password"}, token=token)
            assert_error(wrong, 403, 1004, "POST /v1/users/me/mfa")
        started = await api.post("/v1/users/me/mfa", json={"password": PASSWORD}, token=token)
        assert started.status == 201, started.body
        assert set(started.body["data"]) == {"secret", "otpauth_uri"}


@pytest.mark.gen_test(timeout=30)
async def test_a_password_typed_again_while_the_hash_queue_is_full_is_not_counted(api, app):
    # 503: nothing was checked, so no guess was made (audit config F1): the limit still holds LIMIT - 1 wrong
    # passwords and the right one after them.
    user = await create_user(app)
    token = await token_of(api, user.email)
    async with hash_queue_full(app.accounts.passwords, user.password_hash):
        for password in [PASSWORD, "not-the-password"] * LIMIT:
            refused = await api.post("/v1/users/me/mfa", json={"password": password}, token=token)
            assert_error(refused, 503, 1008, "POST /v1/users/me/mfa", HASHES_WAITING)
    for _ in range(LIMIT - 1):
        wrong = await api.post("/v1/users/me/mfa", json={"password": "not-the-password"}, token=token)
        assert_error(wrong, 403, 1004, "POST /v1/users/me/mfa")
    started = await api.post("/v1/users/me/mfa", json={"password": PASSWORD}, token=token)
    assert started.status == 201, started.body
    assert set(started.body["data"]) == {"secret", "otpauth_uri"}


@pytest.mark.gen_test(timeout=30)
async def test_wrong_codes_to_turn_the_second_factor_off_are_throttled_too(api, app):
    user = await create_user(app)
    token = await token_of(api, user.email)
    secret = (await api.post("/v1/users/me/mfa", json={"password": PASSWORD}, token=token)).body["data"]["secret"]
    totp = pyotp.TOTP(secret)
    confirmed = await api.post("/v1/users/me/mfa/confirm", json={"code": totp.now()}, token=token)
    assert confirmed.status == 200, confirmed.body
    now = time.time()
    near = {totp.at(now + 30 * step) for step in range(-2, 3)}  # the accepted window and a step's margin
    never = next(code for code in ("000000", "111111", "222222") if code not in near)
    off = "/v1/users/me/mfa"
    for _ in range(LIMIT):  # the right password, a wrong code
        assert_error(await api.delete(off, json={"password": PASSWORD, "code": never}, token=token), 401, 10034,
                     f"DELETE {off}", "second factor required or invalid")
    assert_error(await api.delete(off, json={"password": PASSWORD, "code": totp.now()}, token=token), 429, 1006,
                 f"DELETE {off}", TOO_MANY)
    row = await app.db.fetch_one("SELECT confirmed_at FROM mfa_factors WHERE user_id = %s", (user.id,))
    assert row is not None and row[0] is not None  # still on

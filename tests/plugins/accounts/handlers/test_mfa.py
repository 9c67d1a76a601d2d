"""Two-factor authentication (TOTP) over HTTP, on MariaDB and SQLite: enrolling shows the secret once, a code turns
it on and gives recovery codes once; logins then need a fresh code (each works once) or an unused recovery code;
turning it off needs the password and a code."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest

from tests.factories import PASSWORD, Api, assert_error, both_backends, create_user

pytestmark = both_backends
REQUIRED = "second factor required or invalid"


async def login(api: Api, email: str, **otp: str) -> Any:
    return await api.post("/v1/tokens", json={"account": email, "secret": PASSWORD, **otp})


@pytest.mark.gen_test(timeout=60)
async def test_enrolled_accounts_log_in_with_a_fresh_code_or_an_unused_recovery_code(api, app):
    user = await create_user(app)
    token = (await login(api, user.email)).body["data"]["token"]
    wrong = await api.post("/v1/users/me/mfa", json={"password": "not-the-password"}, token=token)
    assert_error(wrong, 403, 1004, "POST /v1/users/me/mfa", "the password does not match")

    enrolled = await api.post("/v1/users/me/mfa", json={"password": PASSWORD}, token=token)
    assert (enrolled.status, enrolled.headers["Cache-Control"]) == (201, "no-store"), enrolled.body
    secret = enrolled.body["data"]["secret"]
    assert enrolled.body["data"]["otpauth_uri"].startswith("otpauth://totp/pet-api:")
    totp = pyotp.TOTP(secret)
    assert (await login(api, user.email)).status == 201  # not on until confirmed

    mistyped = await api.post("/v1/users/me/mfa/confirm", json={"code": "000000" if totp.now() != "000000"
                                                                else "111111"}, token=token)
    assert_error(mistyped, 400, 1001, "POST /v1/users/me/mfa/confirm")
    assert mistyped.body["errors"] == [{"field": "code", "message": "does not match"}]
    first = totp.now()
    confirmed = await api.post("/v1/users/me/mfa/confirm", json={"code": first}, token=token)
    assert (confirmed.status, confirmed.headers["Cache-Control"]) == (200, "no-store"), confirmed.body
    recovery = confirmed.body["data"]["recovery_codes"]
    assert len(set(recovery)) == 10
    stored = await app.db.fetch_all("SELECT code_hash FROM mfa_recovery_codes WHERE user_id = %s", (user.id,))
    assert len(stored) == 10 and not any(code in str(stored) for code in recovery)  # hashes only

    assert_error(await login(api, user.email), 401, 10034, "POST /v1/tokens", REQUIRED)
    assert_error(await login(api, user.email, otp="123456" if first != "123456" else "654321"), 401, 10034,
                 "POST /v1/tokens", REQUIRED)
    assert_error(await login(api, user.email, otp=first), 401, 10034, "POST /v1/tokens", REQUIRED)  # used already
    later = totp.at(time.time() + 30)  # the next step's code: within the accepted window
    assert (await login(api, user.email, otp=later)).status == 201
    assert_error(await login(api, user.email, otp=later), 401, 10034, "POST /v1/tokens", REQUIRED)  # once only
    assert (await login(api, user.email, otp=recovery[0])).status == 201
    assert_error(await login(api, user.email, otp=recovery[0]), 401, 10034, "POST /v1/tokens", REQUIRED)
    again = await api.post("/v1/users/me/mfa", json={"password": PASSWORD}, token=token)
    assert_error(again, 409, 1005, "POST /v1/users/me/mfa")

    off = "/v1/users/me/mfa"
    assert_error(await api.delete(off, json={"password": "not-the-password", "code": recovery[1]}, token=token), 403,
                 1004, f"DELETE {off}", "the password does not match")
    assert_error(await api.delete(off, json={"password": PASSWORD, "code": recovery[0]}, token=token), 401, 10034,
                 f"DELETE {off}", REQUIRED)  # a used recovery code
    removed = await api.delete(off, json={"password": PASSWORD, "code": recovery[1]}, token=token)
    assert (removed.status, removed.body) == (200, {"code": 200, "data": None, "message": "ok"})
    assert (await login(api, user.email)).status == 201
    assert await app.db.fetch_all("SELECT user_id FROM mfa_recovery_codes WHERE user_id = %s", (user.id,)) == []


@pytest.mark.gen_test(timeout=30)
async def test_the_new_error_code_is_listed_in_english_and_chinese(api):
    english = {e["error_code"]: e for e in (await api.get("/v1/errors")).body["data"]}
    chinese = {e["error_code"]: e for e in (await api.get("/v1/errors", headers={"Accept-Language": "zh"})).body[
        "data"]}
    assert (english[10034]["http_status"], english[10034]["message"]) == (401, REQUIRED)
    assert chinese[10034]["message"] == "需要第二重验证，或验证码无效"

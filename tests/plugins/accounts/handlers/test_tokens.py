"""Tokens over HTTP: log in, describe, revoke (also on another instance), tampering, expiry, throttling."""

import asyncio
import datetime as dt
import secrets
import statistics
import time
from typing import Any

import pytest

from server import make_app
from server.plugins.accounts.services import login as login_service
from server.plugins.accounts.services.sessions import hash_token, new_secret
from server.services import now_ms
from tests.factories import (
    PASSWORD,
    Api,
    Response,
    assert_error,
    both_backends,
    create_user,
    hash_queue_full,
    serving,
    unique_email,
)

CREDENTIAL_CHANGES = ["password change", "password reset", "disable"]
NEW_PASSWORD = "a-new-long-password"


@pytest.fixture
def config_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", {})


def parse_utc(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text[:-1] + "+00:00")



@both_backends
@pytest.mark.gen_test
async def test_login_gives_a_bearer_token_described_by_tokens_current(api, app):
    user = await create_user(app)
    before = dt.datetime.now(dt.UTC)
    response = await api.login(user.email.upper())  # e-mails are case-insensitive
    assert response.status == 201, response.body
    data = response.body["data"]
    assert set(data) == {"token", "token_type", "expires_in", "scopes", "refresh_token", "refresh_expires_in"}
    assert (data["token_type"], data["expires_in"], data["refresh_expires_in"]) == ("Bearer", 3600, 2_592_000)
    assert len(data["refresh_token"]) >= 43  # 256 random bits, URL-safe base64
    assert (response.headers["Cache-Control"], response.headers["Pragma"]) == ("no-store", "no-cache")
    assert data["scopes"] == ["pets:read", "pets:write", "users:me"]

    current = await api.get("/v1/tokens/current", token=data["token"])
    assert current.status == 200
    info = current.body["data"]
    assert set(info) == {"user_id", "scopes", "issued_at", "expires_at"}
    assert info["user_id"] == user.id
    assert info["scopes"] == data["scopes"]
    issued, expires = parse_utc(info["issued_at"]), parse_utc(info["expires_at"])
    assert abs((issued - before).total_seconds()) < 5
    assert abs((expires - issued).total_seconds() - 3600) < 0.01


@pytest.mark.parametrize("body", [{}, {"account": "a@example.com"}, {"account": "", "secret": "x"},
                                  {"account": "a@example.com", "secret": PASSWORD, "scopes": ["users:admin"]}])
@pytest.mark.gen_test
async def test_malformed_login_is_400_naming_the_fields(api, body):
    response = await api.post("/v1/tokens", json=body)
    assert_error(response, 400, 1001, "POST /v1/tokens")
    named = {e["field"] for e in response.body["errors"]}
    expected = {"account", "secret"} - set(body) if len(body) < 2 else set(body) - {"account", "secret"}
    assert named == (expected or {"account"})


@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwYXNzd29yZA==", "Bearer a b"])
@pytest.mark.gen_test
async def test_missing_or_malformed_credentials_are_401_1003(api, header):
    response = await api.get("/v1/users/me", headers={} if header is None else {"Authorization": header})
    assert_error(response, 401, 1003, "GET /v1/users/me")
    assert "authorization header" in response.body["message"]


@pytest.mark.gen_test
async def test_a_token_with_one_signature_character_changed_is_401_10031(api, app):
    user = await create_user(app)
    token = await api.token(user.email)
    head, signature = token.rsplit(".", 1)
    for position in (0, len(signature) // 2, len(signature) - 1):
        for replacement in "AbQw_-":
            if signature[position] == replacement:
                continue
            tampered = f"{head}.{signature[:position]}{replacement}{signature[position + 1:]}"
            response = await api.get("/v1/users/me", token=tampered)
            assert_error(response, 401, 10031, "GET /v1/users/me", "token is invalid")
    garbage = await api.get("/v1/users/me", token="not.a.token")
    assert_error(garbage, 401, 10031, "GET /v1/users/me")
    assert (await api.get("/v1/users/me", token=token)).status == 200


@pytest.mark.parametrize("config_overrides", [{"token_expiration": 1}], indirect=True)
@pytest.mark.gen_test(timeout=15)
async def test_a_token_older_than_token_expiration_is_401_10032(api, app):
    user = await create_user(app)
    token = await api.token(user.email)
    assert (await api.get("/v1/users/me", token=token)).status == 200
    await asyncio.sleep(2)
    response = await api.get("/v1/users/me", token=token)
    assert_error(response, 401, 10032, "GET /v1/users/me", "token is expired")
    zh = await api.get("/v1/tokens/current", token=token, headers={"Accept-Language": "zh-CN"})
    assert_error(zh, 401, 10032, "GET /v1/tokens/current", "令牌已过期")


@both_backends
@pytest.mark.gen_test
async def test_delete_tokens_current_revokes_that_token_only(api, app):
    user = await create_user(app)
    first, second = await api.token(user.email), await api.token(user.email)
    response = await api.delete("/v1/tokens/current", token=first)
    assert response.status == 200
    assert response.body == {"code": 200, "data": None, "message": "ok"}
    for method, path in (("GET", "/v1/users/me"), ("GET", "/v1/tokens/current"), ("DELETE", "/v1/tokens/current")):
        revoked = await api.request(method, path, token=first)
        assert_error(revoked, 401, 10033, f"{method} {path}", "token is revoked")
    still = await api.get("/v1/users/me", token=second)
    assert still.status == 200
    assert still.body["data"]["id"] == user.id


@pytest.mark.gen_test(timeout=20)
async def test_revocation_reaches_another_instance_within_the_refresh_bound(api, app, http_client):
    other = make_app(app.config)  # a second instance (another worker or VM) on the same database
    await other.startup()
    try:
        async with serving(other) as other_url:
            remote = Api(http_client, other_url)
            user = await create_user(app)
            token, spare = await api.token(user.email), await api.token(user.email)
            assert (await remote.get("/v1/users/me", token=token)).status == 200
            assert (await remote.get("/v1/users/me", token=spare)).status == 200

            assert (await api.delete("/v1/tokens/current", token=token)).status == 200
            revoked_at = time.monotonic()
            bound = app.config.revocation_refresh_seconds
            await asyncio.sleep(bound + 0.1)
            response = await remote.get("/v1/users/me", token=token)
            assert_error(response, 401, 10033, "GET /v1/users/me")
            assert time.monotonic() - revoked_at < bound + 2  # sleeping overran only on a very slow machine

            # a password change on one instance revokes the user's earlier tokens on the other
            changed = await api.patch("/v1/users/me", token=spare,
                                      json={"password": "another-password", "current_password": PASSWORD})
            assert changed.status == 200
            await asyncio.sleep(bound + 0.1)
            assert_error(await remote.get("/v1/users/me", token=spare), 401, 10033, "GET /v1/users/me")
            renewed = await remote.login(user.email, "another-password")
            assert renewed.status == 201
            assert (await api.get("/v1/users/me", token=renewed.body["data"]["token"])).status == 200
    finally:
        await other.shutdown()


@both_backends
@pytest.mark.gen_test(timeout=20)
async def test_twenty_wrong_passwords_are_throttled_with_retry_after(api, app):
    user = await create_user(app)
    statuses = []
    for _ in range(20):
        response = await api.login(user.email, "wrong-password")
        statuses.append(response.status)
    limit = app.config.login_max_failures
    assert statuses == [401] * limit + [429] * (20 - limit)
    assert_error(response, 429, 1006, "POST /v1/tokens", "too many failed logins, try again later")
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= app.config.login_window_seconds
    # while throttled even the right password is refused, without saying whether it was right
    assert_error(await api.login(user.email), 429, 1006, "POST /v1/tokens")
    # another account from the same address is not locked out by this one
    other = await create_user(app)
    assert (await api.login(other.email)).status == 201


@both_backends
@pytest.mark.parametrize("config_overrides", [{"login_max_failures_per_address": 5}], indirect=True)
@pytest.mark.gen_test(timeout=20)
async def test_failures_are_also_counted_per_client_address(api, app):
    for _ in range(5):  # five different accounts, one failure each: under the per-account limit
        assert (await api.login(unique_email("nobody"), "wrong-password")).status == 401
    user = await create_user(app)
    response = await api.login(user.email)
    assert_error(response, 429, 1006, "POST /v1/tokens")
    assert int(response.headers["Retry-After"]) > 0


@both_backends
@pytest.mark.parametrize("config_overrides", [{"password_hash_max_queued": 1, "login_max_failures": 3,
                                               "login_max_failures_per_address": 5}], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_logins_refused_while_the_hash_queue_is_full_are_not_counted(api, app):
    # A login answered 503 because the password-hash queue was full checked nothing: it stayed counted as a failed
    # login, so a burst of right passwords from one address (a NAT, a proxy without xheaders) locked the address
    # and the account (audit config F1). The right password, a wrong one and an unknown account alike.
    user = await create_user(app)
    attempts = [(user.email, PASSWORD)] * 3 + [(user.email, "wrong-password"), ("ghost@example.com", "wrong")]
    async with hash_queue_full(app.accounts.passwords, user.password_hash):
        for account, secret in attempts:
            refused = await api.login(account, secret)
            assert_error(refused, 503, 1008, "POST /v1/tokens", "too many password hashes waiting, try again later")
            assert refused.headers["Retry-After"] == str(app.config.retry_after)
    counters = {k: n for k, n in await app.db.fetch_all("SELECT k, failures FROM login_failures")}
    assert counters == {f"account:{user.email}": 0, "account:ghost@example.com": 0, "address:127.0.0.1": 0}
    for _ in range(2):  # the account's limits are whole: its wrong passwords are checked, then the right one works
        assert_error(await api.login(user.email, "wrong-password"), 401, 1003, "POST /v1/tokens",
                     "wrong account or password")
    logged_in = await api.login(user.email)
    assert logged_in.status == 201, logged_in.body
    assert set(logged_in.body["data"]) >= {"token", "refresh_token"}


@both_backends
@pytest.mark.gen_test
async def test_a_successful_login_forgives_the_accounts_earlier_failures(api, app):
    user = await create_user(app)
    for _ in range(app.config.login_max_failures - 1):
        assert (await api.login(user.email, "wrong-password")).status == 401
    assert (await api.login(user.email)).status == 201
    for _ in range(app.config.login_max_failures - 1):
        assert (await api.login(user.email, "wrong-password")).status == 401
    assert (await api.login(user.email)).status == 201


@pytest.mark.gen_test
async def test_unknown_account_wrong_password_and_disabled_account_look_the_same(api, app):
    user = await create_user(app)
    disabled = await create_user(app, disabled=True)
    answers = [await api.login("nobody-at-all@example.com"), await api.login(user.email, "wrong-password"),
               await api.login(disabled.email)]
    for response in answers:
        assert_error(response, 401, 1003, "POST /v1/tokens", "wrong account or password")
    assert answers[0].raw == answers[1].raw == answers[2].raw


class CredentialChange:
    """One way an account's credentials change, made over HTTP while a login of it is under way: the account's
    own password change (from an earlier session, which it keeps), a password reset, or an administrator's
    disabling."""

    def __init__(self, api: Api, app: Any, kind: str, *, user: Any, own: dict[str, Any], admin_token: str,
                 reset_token: str, last_session: int | None) -> None:
        self.api, self.app, self.kind, self.user, self.own = api, app, kind, user, own
        self.admin_token, self.reset_token, self.last_session = admin_token, reset_token, last_session

    @classmethod
    async def ready(cls, api: Api, app: Any, kind: str) -> "CredentialChange":
        """An account and what the change needs, obtained before the race: a session, a reset token, an admin."""
        user, reset_token = await create_user(app), new_secret()
        own = (await api.login(user.email)).body["data"]
        admin_token = await api.token((await create_user(app, role="admin")).email)
        await app.db.execute("INSERT INTO account_tokens (token_hash, purpose, user_id, created_at_ms, expires_at_ms)"
                             " VALUES (%s, 'reset', %s, %s, %s)",
                             (hash_token(reset_token), user.id, now_ms(), now_ms() + 600_000))
        last_session = (await app.db.fetch_one("SELECT MAX(id) FROM sessions"))[0]
        return cls(api, app, kind, user=user, own=own, admin_token=admin_token, reset_token=reset_token,
                   last_session=last_session)

    async def make(self) -> Response:
        if self.kind == "password change":
            return await self.api.patch("/v1/users/me", token=self.own["token"],
                                        json={"password": NEW_PASSWORD, "current_password": PASSWORD})
        if self.kind == "password reset":
            return await self.api.post("/v1/password-resets/confirm",
                                       json={"token": self.reset_token, "password": NEW_PASSWORD})
        return await self.api.patch(f"/v1/users/{self.user.id}", token=self.admin_token, json={"disabled": True})

    async def sessions_opened_since_ready(self) -> list[int]:
        """The account's sessions started after ready() and still open."""
        rows = await self.app.db.fetch_all("SELECT id FROM sessions WHERE user_id = %s AND id > %s"
                                           " AND ended_at_ms IS NULL", (self.user.id, self.last_session))
        return [int(row[0]) for row in rows]


@both_backends
@pytest.mark.parametrize("kind", CREDENTIAL_CHANGES)
@pytest.mark.gen_test(timeout=60)
async def test_a_login_whose_password_changes_while_it_is_checked_gets_no_session(api, app, monkeypatch, kind):
    # The change commits while the login's argon2 check of the old password runs (outside any transaction): the
    # session it would start is refused as a wrong password is (audit asvs F1).
    change = await CredentialChange.ready(api, app, kind)
    real_verify, changes, answers = app.accounts.passwords.verify, [change], []

    async def verify_then_change(password_hash: str, secret: str) -> bool:
        matched = await real_verify(password_hash, secret)
        if changes:  # the login's check (the change's own check of current_password passes straight through)
            answers.append(await changes.pop().make())
        return matched

    monkeypatch.setattr(app.accounts.passwords, "verify", verify_then_change)
    response = await api.login(change.user.email)
    assert answers[0].status == 200, answers[0].body
    assert_error(response, 401, 1003, "POST /v1/tokens", "wrong account or password")
    assert set(response.body) == {"error_code", "message", "request"}
    assert await change.sessions_opened_since_ready() == []


@both_backends
@pytest.mark.parametrize("kind", CREDENTIAL_CHANGES)
@pytest.mark.gen_test(timeout=60)
async def test_a_credential_change_waiting_on_a_login_ends_the_session_it_started(api, app, monkeypatch, kind):
    # The change arrives while the login's transaction holds the account: it waits, then ends that session and
    # revokes its tokens (audit asvs F1, the other order).
    change = await CredentialChange.ready(api, app, kind)
    real_second_factor, racing = login_service.second_factor, []

    async def change_meanwhile(tx: Any, *, user_id: int, code: str | None) -> None:
        if not racing:  # the first run of the login's transaction
            racing.append(asyncio.ensure_future(change.make()))
            await asyncio.sleep(0.3)  # the change runs up to the account's row (or SQLite's write lock) and waits
        await real_second_factor(tx, user_id=user_id, code=code)

    monkeypatch.setattr(login_service, "second_factor", change_meanwhile)
    response = await api.login(change.user.email)
    assert response.status == 201, response.body
    changed = await racing[0]
    assert changed.status == 200, changed.body
    pair = response.body["data"]
    assert_error(await api.get("/v1/users/me", token=pair["token"]), 401, 10033, "GET /v1/users/me", "token is revoked")
    assert_error(await api.post("/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]}), 401, 10033,
                 "POST /v1/tokens/refresh", "token is revoked")
    assert await change.sessions_opened_since_ready() == []


@pytest.mark.parametrize("config_overrides", [{"password_hash_time_cost": 2, "password_hash_memory_kib": 32768}],
                         indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_an_unknown_account_costs_an_argon2_verification_too(api, app):
    user = await create_user(app)
    await api.login("warm-up@example.com")  # the dummy hash is made once, on first use

    async def timed(email: str) -> float:
        start = time.perf_counter()
        response = await api.login(email, "wrong-password")
        assert response.status == 401
        return time.perf_counter() - start

    known, unknown = [], []
    for i in range(4):
        known.append(await timed(user.email))
        unknown.append(await timed(f"nobody{i}@example.com"))
    known_median, unknown_median = statistics.median(known), statistics.median(unknown)
    assert known_median > 0.02  # the hash is costly enough for the comparison to mean something
    assert unknown_median > 0.5 * known_median, (known, unknown)


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_concurrent_guesses_cannot_outrun_the_throttle(api, app):
    user = await create_user(app)
    responses = await asyncio.gather(*(api.login(user.email, f"guess-{i}") for i in range(30)))
    statuses = sorted(r.status for r in responses)
    limit = app.config.login_max_failures
    assert statuses.count(401) == limit, statuses  # each guess sees its own place in line: no more, no fewer
    assert statuses.count(429) == 30 - limit
    assert {r.body["error_code"] for r in responses} <= {1003, 1006}


@pytest.mark.gen_test(timeout=30)
async def test_a_tokens_expiry_is_fixed_when_issued_and_every_instance_honours_it(api, app, http_client):
    # Two instances on one database, configured differently: this one's tokens live 3600 s, the other's 1 s.
    short = make_app(app.config.model_copy(update={"token_expiration": 1}))
    await short.startup()
    try:
        async with serving(short) as short_url:
            remote = Api(http_client, short_url)
            user = await create_user(app)
            brief = await remote.login(user.email)
            assert brief.status == 201 and brief.body["data"]["expires_in"] == 1, brief.body
            long_lived = await api.token(user.email)
            legacy = _token_without_exp(app, user.id)  # issued before tokens carried their expiry
            await asyncio.sleep(1.3)
            # the 1 s token is expired here too, although this instance would keep its own for an hour
            assert_error(await api.get("/v1/users/me", token=brief.body["data"]["token"]), 401, 10032,
                         "GET /v1/users/me")
            # a 3600 s token is good on the instance that issues 1 s ones
            mine = await remote.get("/v1/users/me", token=long_lived)
            assert (mine.status, mine.body["data"]["id"]) == (200, user.id)
            described = await remote.get("/v1/tokens/current", token=long_lived)
            assert described.status == 200, described.body
            lifetime = parse_utc(described.body["data"]["expires_at"]) - parse_utc(described.body["data"]["issued_at"])
            assert abs(lifetime.total_seconds() - 3600) < 0.01
            # a token without the claim keeps each instance's own lifetime, as before
            assert (await api.get("/v1/users/me", token=legacy)).status == 200
            assert_error(await remote.get("/v1/users/me", token=legacy), 401, 10032, "GET /v1/users/me")
    finally:
        await short.shutdown()


def _token_without_exp(app, user_id: int) -> str:
    """A token signed the way tokens were before they carried "exp" (issued now)."""
    payload = {"uid": user_id, "scp": ["users:me"], "jti": secrets.token_urlsafe(12), "iat": int(time.time() * 1000)}
    return app.tokens.serializer.dumps(payload)

"""Refresh tokens (rotation, replay detection) and sessions over HTTP, on MariaDB and SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server import make_app
from server.plugins.accounts.services.sessions import hash_token
from tests.factories import PASSWORD, Api, assert_error, both_backends, create_user, serving

REFRESH = "/v1/tokens/refresh"


async def login(api: Api, email: str, agent: str = "pet-app/1.0 (iPhone; iOS 17)") -> dict[str, Any]:
    response = await api.post("/v1/tokens", json={"account": email, "secret": PASSWORD},
                              headers={"User-Agent": agent})
    assert response.status == 201, response.body
    return response.body["data"]


async def refresh(api: Api, refresh_token: str) -> Any:
    return await api.post(REFRESH, json={"refresh_token": refresh_token})


async def wait_for_revocations(app: Any) -> None:
    await asyncio.sleep(app.config.revocation_refresh_seconds + 0.1)


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_twenty_refreshes_rotate_and_replaying_the_third_ends_only_that_session(api, app):
    user = await create_user(app)
    first = await login(api, user.email)
    other_device = await login(api, user.email, agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    pairs = [first]
    for _ in range(20):
        response = await refresh(api, pairs[-1]["refresh_token"])
        assert response.status == 201, response.body
        assert response.headers["Cache-Control"] == "no-store"
        pair = response.body["data"]
        assert set(pair) == {"token", "token_type", "expires_in", "scopes", "refresh_token", "refresh_expires_in"}
        assert pair["refresh_token"] not in {p["refresh_token"] for p in pairs}
        assert 0 < pair["refresh_expires_in"] <= 2_592_000
        me = await api.get("/v1/users/me", token=pair["token"])
        assert (me.status, me.body["data"]["id"]) == (200, user.id), me.body
        previous = await api.get("/v1/users/me", token=pairs[-1]["token"])  # the previous pair is dead
        assert_error(previous, 401, 10033, "GET /v1/users/me", "token is revoked")
        pairs.append(pair)
    assert_error(await refresh(api, pairs[0]["refresh_token"]), 401, 10033, f"POST {REFRESH}")

    replay = await refresh(api, pairs[2]["refresh_token"])  # the 3rd token, used long ago: a thief's replay
    assert_error(replay, 401, 10033, f"POST {REFRESH}", "token is revoked")
    for pair in pairs:  # every token of that login, the newest pair included
        assert_error(await api.get("/v1/users/me", token=pair["token"]), 401, 10033, "GET /v1/users/me")
    assert_error(await refresh(api, pairs[-1]["refresh_token"]), 401, 10033, f"POST {REFRESH}")

    assert (await api.get("/v1/users/me", token=other_device["token"])).status == 200  # the other device goes on
    renewed = await refresh(api, other_device["refresh_token"])
    assert renewed.status == 201, renewed.body
    sessions = await api.get("/v1/sessions", token=renewed.body["data"]["token"])
    assert sessions.status == 200, sessions.body
    assert [(s["device"], s["current"]) for s in sessions.body["data"]] == [("Firefox on Linux", True)]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_two_concurrent_refreshes_with_one_token_at_most_one_succeeds(api, app):
    user = await create_user(app)
    first = await login(api, user.email)
    answers = await asyncio.gather(refresh(api, first["refresh_token"]), refresh(api, first["refresh_token"]))
    statuses = sorted(a.status for a in answers)
    assert statuses in ([201, 401], [401, 401]), [a.body for a in answers]
    for answer in answers:
        if answer.status == 401:
            assert_error(answer, 401, 10033, f"POST {REFRESH}")
    # the second use is a replay: the session is over, the winner's pair included
    winner = [a for a in answers if a.status == 201]
    for answer in winner:
        assert_error(await refresh(api, answer.body["data"]["refresh_token"]), 401, 10033, f"POST {REFRESH}")


@both_backends
@pytest.mark.gen_test
async def test_unknown_malformed_and_expired_refresh_tokens_are_refused(api, app):
    assert_error(await refresh(api, "not-a-token-we-ever-issued"), 401, 10031, f"POST {REFRESH}", "token is invalid")
    missing = await api.post(REFRESH, json={})
    assert_error(missing, 400, 1001, f"POST {REFRESH}")
    assert [e["field"] for e in missing.body["errors"]] == ["refresh_token"]
    user = await create_user(app)
    first = await login(api, user.email)
    # the session's absolute lifetime has run out
    await app.db.execute("UPDATE sessions SET expires_at_ms = 1 WHERE user_id = %s", (user.id,))
    assert_error(await refresh(api, first["refresh_token"]), 401, 10032, f"POST {REFRESH}", "token is expired")
    second = await login(api, user.email)
    # unused for longer than session_idle_timeout (7 days by default)
    await app.db.execute("UPDATE sessions SET last_used_at = %s WHERE user_id = %s",
                         ("2001-01-01 00:00:00", user.id))
    assert_error(await refresh(api, second["refresh_token"]), 401, 10032, f"POST {REFRESH}")
    assert (await api.get("/v1/sessions", token=second["token"])).body["data"] == []


@both_backends
@pytest.mark.gen_test
async def test_refresh_tokens_are_stored_only_as_hashes(api, app):
    user = await create_user(app)
    pair = await login(api, user.email)
    rows = await app.db.fetch_all("SELECT token_hash FROM refresh_tokens")
    assert [r[0] for r in rows] == [hash_token(pair["refresh_token"])]
    assert pair["refresh_token"] not in str(rows)


@both_backends
@pytest.mark.gen_test
async def test_a_disabled_account_cannot_refresh(api, app):
    user = await create_user(app)
    pair = await login(api, user.email)
    await app.db.execute("UPDATE users SET disabled = 1 WHERE id = %s", (user.id,))
    assert_error(await refresh(api, pair["refresh_token"]), 401, 10033, f"POST {REFRESH}")


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_two_logins_show_two_sessions_and_ending_one_kills_its_tokens(api, app):
    user = await create_user(app)
    phone = await login(api, user.email)
    laptop = await login(api, user.email, agent="Mozilla/5.0 (Windows NT 10.0) Chrome/126.0 Safari/537.36")
    listed = await api.get("/v1/sessions", token=laptop["token"])
    assert listed.status == 200, listed.body
    sessions = listed.body["data"]
    assert [(s["device"], s["address"], s["current"]) for s in sessions] == [
        ("Chrome on Windows", "127.0.0.1", True), ("pet-app on iOS", "127.0.0.1", False)]
    assert set(sessions[0]) == {"id", "device", "address", "created_at", "last_used_at", "current"}

    stranger = await create_user(app)
    stranger_token = (await login(api, stranger.email))["token"]
    assert_error(await api.delete(f"/v1/sessions/{sessions[1]['id']}", token=stranger_token), 404, 1002,
                 f"DELETE /v1/sessions/{sessions[1]['id']}")
    ended = await api.delete(f"/v1/sessions/{sessions[1]['id']}", token=laptop["token"])
    assert (ended.status, ended.body["data"]) == (200, None), ended.body
    assert_error(await api.get("/v1/users/me", token=phone["token"]), 401, 10033, "GET /v1/users/me")
    assert_error(await refresh(api, phone["refresh_token"]), 401, 10033, f"POST {REFRESH}")
    assert_error(await api.delete(f"/v1/sessions/{sessions[1]['id']}", token=laptop["token"]), 404, 1002,
                 f"DELETE /v1/sessions/{sessions[1]['id']}")
    assert [s["id"] for s in (await api.get("/v1/sessions", token=laptop["token"])).body["data"]] == [sessions[0]["id"]]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_ending_the_other_sessions_keeps_the_current_one(api, app):
    user = await create_user(app)
    others = [await login(api, user.email) for _ in range(3)]
    current = await login(api, user.email)
    refused = await api.delete("/v1/sessions?others=false", token=current["token"])
    assert_error(refused, 400, 1001, "DELETE /v1/sessions")
    assert [e["field"] for e in refused.body["errors"]] == ["others"]
    ended = await api.delete("/v1/sessions?others=true", token=current["token"])
    assert ended.status == 200, ended.body
    assert ended.body["data"] == {"sessions_ended": 3}, ended.body
    for pair in others:
        assert_error(await api.get("/v1/users/me", token=pair["token"]), 401, 10033, "GET /v1/users/me")
        assert_error(await refresh(api, pair["refresh_token"]), 401, 10033, f"POST {REFRESH}")
    assert (await api.get("/v1/users/me", token=current["token"])).status == 200
    assert (await refresh(api, current["refresh_token"])).status == 201


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_password_change_ends_every_other_session_and_says_so(api, app):
    user = await create_user(app)
    other = await login(api, user.email)
    current = await login(api, user.email)
    changed = await api.patch("/v1/users/me", token=current["token"],
                              json={"password": "a-new-long-password", "current_password": PASSWORD})
    assert changed.status == 200, changed.body
    assert (changed.body["data"]["id"], changed.body["data"]["sessions_ended"]) == (user.id, 1)
    assert_error(await refresh(api, other["refresh_token"]), 401, 10033, f"POST {REFRESH}")
    assert_error(await api.get("/v1/users/me", token=other["token"]), 401, 10033, "GET /v1/users/me")
    # this device's access token predates the change too; its session goes on through its refresh token
    assert_error(await api.get("/v1/users/me", token=current["token"]), 401, 10033, "GET /v1/users/me")
    renewed = await refresh(api, current["refresh_token"])
    assert renewed.status == 201, renewed.body
    assert (await api.get("/v1/users/me", token=renewed.body["data"]["token"])).status == 200
    listed = await api.get("/v1/sessions", token=renewed.body["data"]["token"])
    assert [s["current"] for s in listed.body["data"]] == [True]


@pytest.mark.gen_test(timeout=30)
async def test_ending_a_session_reaches_another_instance_within_the_revocation_bound(api, app, http_client):
    other = make_app(app.config)  # another worker or VM on the same database
    await other.startup()
    try:
        async with serving(other) as other_url:
            remote = Api(http_client, other_url)
            user = await create_user(app)
            phone, laptop = await login(api, user.email), await login(api, user.email)
            assert (await remote.get("/v1/users/me", token=phone["token"])).status == 200
            sessions = (await api.get("/v1/sessions", token=laptop["token"])).body["data"]
            phone_session = next(s["id"] for s in sessions if not s["current"])
            assert (await api.delete(f"/v1/sessions/{phone_session}", token=laptop["token"])).status == 200
            await wait_for_revocations(app)
            assert_error(await remote.get("/v1/users/me", token=phone["token"]), 401, 10033, "GET /v1/users/me")
            assert_error(await refresh(remote, phone["refresh_token"]), 401, 10033, f"POST {REFRESH}")
            assert (await remote.get("/v1/users/me", token=laptop["token"])).status == 200
    finally:
        await other.shutdown()


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_logging_out_ends_the_session_and_its_refresh_token(api, app):
    user = await create_user(app)
    leaving, staying = await login(api, user.email), await login(api, user.email)
    out = await api.delete("/v1/tokens/current", token=leaving["token"])
    assert (out.status, out.body["data"]) == (200, None)
    assert_error(await api.get("/v1/users/me", token=leaving["token"]), 401, 10033, "GET /v1/users/me")
    assert_error(await refresh(api, leaving["refresh_token"]), 401, 10033, f"POST {REFRESH}")
    listed = await api.get("/v1/sessions", token=staying["token"])
    assert [s["current"] for s in listed.body["data"]] == [True]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_an_admin_disabling_an_account_ends_all_its_sessions(api, app):
    user, admin = await create_user(app), await create_user(app, role="admin")
    pairs = [await login(api, user.email) for _ in range(2)]
    admin_token = (await login(api, admin.email))["token"]
    disabled = await api.patch(f"/v1/users/{user.id}", json={"disabled": True}, token=admin_token)
    assert (disabled.status, disabled.body["data"]["disabled"]) == (200, True)
    for pair in pairs:
        assert_error(await api.get("/v1/users/me", token=pair["token"]), 401, 10033, "GET /v1/users/me")
        assert_error(await refresh(api, pair["refresh_token"]), 401, 10033, f"POST {REFRESH}")
    ended = await app.db.fetch_one("SELECT COUNT(*) FROM sessions WHERE user_id = %s AND ended_at_ms IS NOT NULL",
                                   (user.id,))
    assert ended[0] == 2

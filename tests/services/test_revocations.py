"""The revocation cache: shared through the database, refreshed with a bounded staleness, failing closed."""

import asyncio
import time

import pytest

from server.auth import TokenSigner
from server.errors import ServiceUnavailable, TokenRevoked
from server.services.revocations import RevocationCache
from tests.factories import assert_error, both_backends, user_with_token

pytestmark = both_backends
TOKEN_EXPIRATION = 3600


def _cache() -> RevocationCache:
    return RevocationCache(refresh_seconds=0.2, token_expiration=TOKEN_EXPIRATION)


def _signer() -> TokenSigner:
    return TokenSigner(["revocation-test-key-0123456789"], token_expiration=TOKEN_EXPIRATION)


@pytest.mark.gen_test
async def test_a_revoked_token_is_refused_here_at_once_and_elsewhere_after_a_refresh(app):
    here, elsewhere = _cache(), _cache()
    await here.refresh(app.db)
    await elsewhere.refresh(app.db)
    token, other = _signer().issue(1, []).principal, _signer().issue(1, []).principal
    await here.revoke_token(app.db, token)
    with pytest.raises(TokenRevoked):
        here.check(token)
    elsewhere.check(token)  # not yet seen: this is the staleness the refresh interval bounds
    await elsewhere.refresh(app.db)
    with pytest.raises(TokenRevoked):
        elsewhere.check(token)
    elsewhere.check(other)


@pytest.mark.gen_test
async def test_revoking_a_user_refuses_only_tokens_issued_before(app):
    cache, elsewhere = _cache(), _cache()
    await cache.refresh(app.db)
    signer = _signer()
    old, someone_else = signer.issue(7, []).principal, signer.issue(8, []).principal
    await asyncio.sleep(0.002)
    await cache.revoke_user(app.db, 7)
    await asyncio.sleep(0.002)
    new = signer.issue(7, []).principal
    await elsewhere.refresh(app.db)
    for c in (cache, elsewhere):
        with pytest.raises(TokenRevoked):
            c.check(old)
        c.check(new)
        c.check(someone_else)


@pytest.mark.gen_test
async def test_a_cache_too_long_without_refresh_fails_closed(app):
    cache = _cache()
    await cache.refresh(app.db)
    principal = _signer().issue(1, []).principal
    cache.check(principal)
    cache.refreshed_at -= cache.max_staleness + 1
    with pytest.raises(ServiceUnavailable) as caught:
        cache.check(principal)
    assert caught.value.code == 1008
    assert caught.value.headers["Retry-After"]
    never = _cache()  # never refreshed: nothing is known, nothing passes
    with pytest.raises(ServiceUnavailable):
        never.check(principal)


@pytest.mark.gen_test
async def test_a_request_meeting_a_stale_cache_catches_up_instead_of_answering_503_when_the_database_is_back(app, api):
    cache = app.revocations
    user, token = await user_with_token(app)
    cache.refreshed_at -= cache.max_staleness + 1  # as after an outage longer than the bound
    revoked_elsewhere = _signer().issue(user.id, []).principal
    await app.db.execute("INSERT INTO token_revocations (jti, expires_at_ms) VALUES (%s, %s)",
                         (revoked_elsewhere.jti, int(time.time() * 1000) + 60_000))
    answers = await asyncio.gather(*(api.get("/v1/pets", token=token) for _ in range(5)))
    assert [(a.status, a.body["data"]) for a in answers] == [(200, [])] * 5  # the database is there: no 503
    assert not cache.stale
    with pytest.raises(TokenRevoked):  # and what it caught up with is known
        cache.check(revoked_elsewhere)


@pytest.mark.gen_test
async def test_expired_revocations_are_dropped_and_purged(app):
    cache = _cache()
    principal = _signer().issue(1, []).principal
    await cache.revoke_token(app.db, principal)
    await app.db.execute("UPDATE token_revocations SET expires_at_ms = %s", (int(time.time() * 1000) - 120_000,))
    fresh = _cache()
    await fresh.refresh(app.db)
    fresh.check(principal)  # its token has expired anyway: nothing to remember
    await cache.purge(app.db)
    assert await app.db.fetch_all("SELECT id FROM token_revocations") == []


@pytest.mark.gen_test
async def test_the_background_refresh_picks_up_revocations(app):
    here, elsewhere = _cache(), _cache()
    await elsewhere.refresh(app.db)
    elsewhere.start(app.db)
    try:
        principal, busy = _signer().issue(1, []).principal, _signer().issue(2, []).principal
        await here.revoke_token(app.db, principal)
        for _ in range(30):  # a worker serving requests: tokens checked between its rounds
            elsewhere.check(busy)
            await asyncio.sleep(elsewhere.refresh_seconds / 10)
        with pytest.raises(TokenRevoked):
            elsewhere.check(principal)
    finally:
        await elsewhere.stop()


@pytest.mark.gen_test(timeout=30)
async def test_an_idle_worker_reads_nothing_and_its_next_request_catches_up_first(app, api):
    cache = app.revocations
    _, token = await user_with_token(app)
    assert (await api.get("/v1/pets", token=token)).status == 200
    await asyncio.sleep(cache.refresh_seconds * 3)  # the round after the request reads, the next ones skip
    refreshed = cache.refreshed_at
    await asyncio.sleep(cache.refresh_seconds * 3)
    assert (cache.refreshed_at, cache.skipped) == (refreshed, True)  # idle: no statement
    # Revoked by another worker during the pause: the next request here catches up before it checks.
    await app.db.execute("INSERT INTO token_revocations (jti, expires_at_ms) VALUES (%s, %s)",
                         (app.tokens.verify(token).jti, int(time.time() * 1000) + 60_000))
    assert_error(await api.get("/v1/pets", token=token), 401, 10033, "GET /v1/pets", "token is revoked")
    assert cache.refreshed_at > refreshed and not cache.skipped

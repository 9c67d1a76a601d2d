"""What the hot path remembers must never change an answer: a token verified from the cache is still refused
once revoked (within the refresh bound) or expired, the cache stays bounded and really skips the signature
check, the Date header is now, and the access-log timestamp is right across second boundaries."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any

import orjson
import pytest
from tornado import httputil

from server.app import make_app
from server.auth import TokenSigner
from server.errors import TokenExpired, TokenRevoked
from server.logs import AccessLog, JSONFormatter, Timestamps
from tests.factories import user_with_token

KEY = "perf-cache-test-key-0123456789abcdef"


class CountingSerializer:
    """Wraps the signer's serializer to count signature checks (the cost the cache exists to skip)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.loads_calls = 0

    def loads(self, *args: Any, **kwargs: Any) -> Any:
        self.loads_calls += 1
        return self.inner.loads(*args, **kwargs)

    def dumps(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.dumps(*args, **kwargs)


def test_a_cached_token_skips_the_signature_check_and_the_cache_stays_bounded():
    signer = TokenSigner([KEY], token_expiration=60, cache_size=2)
    counting = signer.serializer = CountingSerializer(signer.serializer)  # type: ignore[assignment]
    tokens = [signer.issue(n, ["pets:read"]).token for n in range(3)]
    first = signer.verify(tokens[0])
    assert signer.verify(tokens[0]) is first and counting.loads_calls == 1  # second time from the cache
    signer.verify(tokens[1])
    signer.verify(tokens[2])
    assert len(signer._verified) == 2 and tokens[0] not in signer._verified  # oldest evicted
    assert signer.verify(tokens[0]).user_id == 0 and counting.loads_calls == 4  # evicted: verified again


def test_a_token_verified_from_the_cache_expires_on_time():
    signer = TokenSigner([KEY], token_expiration=60)
    issued = signer.issue(1, [])
    signer.verify(issued.token)
    # The cached principal carries the token's own expiry; past it, the cache answers "expired" too.
    signer._verified[issued.token] = type(issued.principal)(
        1, frozenset(), issued.principal.jti, issued.principal.issued_at_ms, time.time() - 0.001)
    with pytest.raises(TokenExpired):
        signer.verify(issued.token)


@pytest.mark.gen_test(timeout=30)
async def test_a_token_cached_by_another_worker_is_refused_there_within_the_refresh_bound(app, http_server, api):
    other = make_app(app.config)  # a second worker: its own token cache and revocation cache, same database
    await other.startup()
    try:
        _, token = await user_with_token(app)
        _, fresh_token = await user_with_token(app)
        for t in (token, fresh_token):
            other.revocations.check(other.tokens.verify(t))  # verified and cached over there
        revoked = await api.delete("/v1/tokens/current", token=token)  # logged out here
        assert revoked.status == 200
        bound = app.config.revocation_refresh_seconds
        started = time.monotonic()
        while True:
            principal = other.tokens.verify(token)  # still served from the signature cache...
            try:
                other.revocations.check(principal)  # ...but the revocation check is not
            except TokenRevoked:
                break
            assert time.monotonic() - started < bound + 2.0, "revocation not seen within the refresh bound"
            await asyncio.sleep(0.01)
        other.revocations.check(other.tokens.verify(fresh_token))  # another user's token is unaffected
        answer = await api.get("/v1/tokens/current", token=token)
        assert (answer.status, answer.body["error_code"]) == (401, 10033)
    finally:
        await other.shutdown()


def test_the_timestamp_cache_is_right_across_a_second_boundary():
    timestamps = Timestamps()
    assert timestamps.format(1000.999, 999.0) == "1970-01-01T00:16:40.999Z"
    assert timestamps.format(1001.0, 0.0) == "1970-01-01T00:16:41.000Z"
    assert timestamps.format(1000.5, 500.0) == "1970-01-01T00:16:40.500Z"  # an older second after a newer one


def test_the_direct_access_line_is_the_line_logging_would_write():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    root.handlers[:] = [handler]  # the production setup: one JSON handler on the root logger
    root.setLevel(logging.INFO)
    try:
        fields = {"request_id": "r1", "method": "GET", "path": "/v1/pets/1", "status": 200, "duration_ms": 1.5,
                  "user_id": None}
        assert AccessLog().write_line(dict(fields))
        logging.getLogger("pet_api.access").info("request", extra=fields)
        handler.flush()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    direct, logged = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert list(direct) == list(logged)  # same keys in the same order, user_id left out when None
    assert {k: v for k, v in direct.items() if k != "time"} == {k: v for k, v in logged.items() if k != "time"}


@pytest.mark.gen_test
async def test_the_date_header_is_now(api):
    before = httputil.format_timestamp(int(time.time()))
    response = await api.get("/v1/health")
    after = httputil.format_timestamp(int(time.time()))
    assert response.status == 200 and response.body["data"] == {"status": "ok"}
    assert response.headers["Date"] in (before, after)

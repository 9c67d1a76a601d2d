"""Optimistic concurrency: of 50 PATCHes carrying the same If-Match, exactly one wins and the row is its."""

from __future__ import annotations

import asyncio

import pytest

from tests.factories import both_backends, create_pet, user_with_token
from tests.reliability.conftest import wide_api

WRITERS = 50


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_concurrent_patches_with_one_etag_have_exactly_one_winner(app, http_server, base_url):
    api = wide_api(base_url, WRITERS)
    _, token = await user_with_token(app)
    pet = await create_pet(api, token, name="Before", breed="none")
    etag = (await api.get(f"/v1/pets/{pet['id']}", token=token)).headers["ETag"]
    for round_ in range(3):  # a new race on each new version
        answers = await asyncio.gather(*(
            api.patch(f"/v1/pets/{pet['id']}", json={"name": f"Writer {n}", "breed": f"r{round_}w{n}"},
                      token=token, headers={"If-Match": etag}) for n in range(WRITERS)))
        winners = [(n, a) for n, a in enumerate(answers) if a.status == 200]
        losers = [a for a in answers if a.status != 200]
        assert len(winners) == 1, [a.status for a in answers]
        assert len(losers) == WRITERS - 1
        assert all((a.status, a.body["error_code"]) == (412, 1009) for a in losers), {a.status for a in losers}
        n, won = winners[0]
        final = await api.get(f"/v1/pets/{pet['id']}", token=token)
        assert final.status == 200
        assert final.body["data"] == won.body["data"]
        assert (final.body["data"]["name"], final.body["data"]["breed"]) == (f"Writer {n}", f"r{round_}w{n}")
        assert final.body["data"]["version"] == pet["version"] + round_ + 1
        assert final.headers["ETag"] == won.headers["ETag"] != etag
        etag = won.headers["ETag"]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_concurrent_deletes_with_one_etag_delete_once(app, http_server, base_url):
    api = wide_api(base_url, WRITERS)
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    etag = (await api.get(f"/v1/pets/{pet['id']}", token=token)).headers["ETag"]
    answers = await asyncio.gather(
        api.patch(f"/v1/pets/{pet['id']}", json={"name": "Racer"}, token=token, headers={"If-Match": etag}),
        *(api.delete(f"/v1/pets/{pet['id']}", token=token, headers={"If-Match": etag}) for _ in range(WRITERS - 1)))
    ok = [a for a in answers if a.status == 200]
    assert len(ok) == 1, [(a.status, a.body) for a in answers]
    assert all((a.status, a.body["error_code"]) in ((412, 1009), (404, 1002)) for a in answers if a.status != 200)
    after = await api.get(f"/v1/pets/{pet['id']}", token=token)
    if ok[0].body["data"] is None:  # a delete won: the pet is gone
        assert (after.status, after.body["error_code"]) == (404, 1002)
    else:  # the patch won: every delete failed and the pet carries the patch
        assert (after.status, after.body["data"]["name"]) == (200, "Racer")

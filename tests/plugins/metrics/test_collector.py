"""GET /metrics: requests and latency by route/method/status, errors by code, requests in flight, the pool.
(Several workers: tests/test_workers.py.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import user_with_token


async def scrape(api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")  # the text exposition format
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.raw.decode()) for s in family.samples}


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


@pytest.mark.gen_test
async def test_requests_are_counted_by_route_method_and_status_and_errors_by_code(api, app):
    _, token = await user_with_token(app)
    for _ in range(3):
        assert (await api.get("/v1/health")).status == 200
    missing = await api.get("/v1/pets/999999", token=token)
    assert missing.status == 404 and missing.body["error_code"] == 1002
    unknown = await api.get("/v1/nothing-here")
    assert unknown.status == 404 and unknown.body["error_code"] == 1007
    bad = await api.post("/v1/tokens", json={"account": 1})
    assert bad.status == 400 and bad.body["error_code"] == 1001

    metrics = await scrape(api)
    assert metrics[key("pet_api_requests_total", route="/v1/health", method="GET", status="200")] == 3
    assert metrics[key("pet_api_requests_total", route="/v1/pets/{pet_id}", method="GET", status="404")] == 1
    assert metrics[key("pet_api_requests_total", route="unmatched", method="GET", status="404")] == 1
    assert metrics[key("pet_api_requests_total", route="/v1/tokens", method="POST", status="400")] == 1
    health = {"route": "/v1/health", "method": "GET", "status": "200"}
    assert metrics[key("pet_api_request_duration_seconds_count", **health)] == 3
    assert metrics[key("pet_api_request_duration_seconds_bucket", le="+Inf", **health)] == 3
    assert 0 < metrics[key("pet_api_request_duration_seconds_sum", **health)] < 3
    assert {code: metrics[key("pet_api_errors_total", error_code=code)] for code in ("1001", "1002", "1007")} == \
        {"1001": 1, "1002": 1, "1007": 1}
    assert metrics[key("pet_api_workers")] == 1
    in_use = metrics[key("pet_api_db_pool_connections", state="in_use")]
    idle = metrics[key("pet_api_db_pool_connections", state="idle")]
    assert in_use >= 0 and idle >= 1


@pytest.mark.gen_test
async def test_a_made_up_method_does_not_mint_a_label(api):
    response = await api.request("BREW", "/v1/health")
    assert response.status == 405 and response.body["error_code"] == 1007
    metrics = await scrape(api)
    assert metrics[key("pet_api_requests_total", route="/v1/health", method="other", status="405")] == 1
    assert not any(labels and ("method", "BREW") in labels for _, labels in metrics)


@pytest.mark.parametrize("config_overrides", [{"plugins": ["core", "metrics", "tests.deploy.slow_plugin"]}])
@pytest.mark.gen_test(timeout=20)
async def test_requests_in_flight(api, config_overrides):
    slow = [asyncio.ensure_future(api.get("/test/slow?ms=1500")) for _ in range(3)]
    for _ in range(100):
        metrics = await scrape(api)
        if metrics[key("pet_api_requests_in_flight")] == 4:  # three slow ones and this scrape
            break
        await asyncio.sleep(0.05)
    assert metrics[key("pet_api_requests_in_flight")] == 4
    assert {r.status for r in await asyncio.gather(*slow)} == {200}
    assert (await scrape(api))[key("pet_api_requests_in_flight")] == 1


@pytest.mark.gen_test
async def test_a_scrape_counts_the_requests_finished_in_the_same_loop_turn(app):
    # Requests are added to the metrics at the end of the loop's turn; a scrape in that turn sees them too.
    handler = SimpleNamespace(route="/v1/turn", request=SimpleNamespace(method="GET"))
    for status in (200, 200, 304):
        app.metrics.observe(handler, status, 0.002)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(app.metrics.render().decode()) for s in family.samples}
    route = {"route": "/v1/turn", "method": "GET"}
    assert samples[key("pet_api_requests_total", status="200", **route)] == 2
    assert samples[key("pet_api_requests_total", status="304", **route)] == 1
    assert samples[key("pet_api_request_duration_seconds_bucket", le="0.0025", status="200", **route)] == 2
    assert samples[key("pet_api_request_duration_seconds_sum", status="200", **route)] == pytest.approx(0.004)

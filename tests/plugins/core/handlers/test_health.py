"""Liveness, readiness (also while the database is away) and the error catalog."""

import asyncio
import itertools
import time

import pytest
from tornado.httpclient import AsyncHTTPClient

from server import make_app
from server.app import PetAPI
from server.errors import HTTPFailure
from tests.conftest import migrate_database
from tests.conftest import test_config as profile_config
from tests.factories import Api, serving, user_with_token
from tests.mariadb_server import create_database
from tests.plugins.metrics.test_collector import key, scrape
from tests.processes import ROOT, free_port


@pytest.mark.gen_test
async def test_health_answers_without_touching_the_database(api):
    response = await api.get("/v1/health")
    assert response.status == 200
    assert response.body == {"code": 200, "data": {"status": "ok"}, "message": "ok"}
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"


@pytest.mark.gen_test
async def test_ready_pings_the_database(api):
    response = await api.get("/v1/health/ready")
    assert response.status == 200
    assert response.body["data"] == {"status": "ok"}


@pytest.mark.gen_test
async def test_error_catalog_lists_every_code(api):
    response = await api.get("/v1/errors")
    assert response.status == 200
    codes = {e["error_code"]: e["http_status"] for e in response.body["data"]}
    assert codes == {999: 500, 1001: 400, 1002: 404, 1003: 401, 1004: 403, 1005: 409, 1006: 429, 1007: 404,
                     1008: 503, 1009: 412, 1010: 409, 1011: 422, 1012: 410, 10031: 401, 10032: 401, 10033: 401,
                     10034: 401, 2301: 409, 2302: 410, 2303: 409, 2304: 409, 2305: 409, 2306: 409, 2307: 409}


@pytest.mark.gen_test
async def test_error_catalog_says_1007_comes_with_several_statuses_and_the_others_with_one(api):
    """1007 is answered with the real status (404 unknown route, 405, 413, 415, 431): http_statuses lists them
    while http_status keeps its type and meaning (the usual one); every other entry keeps its three fields."""
    entries = (await api.get("/v1/errors")).body["data"]
    assert [e for e in entries if e["error_code"] == 1007] == [
        {"error_code": 1007, "http_status": 404, "message": "http error", "http_statuses": [404, 405, 413, 415, 431]}]
    assert all(set(e) == {"error_code", "http_status", "message"} and isinstance(e["http_status"], int)
               for e in entries if e["error_code"] != 1007)
    wrong_method = await api.request("PUT", "/v1/health")
    assert (wrong_method.status, wrong_method.body["error_code"]) == (405, 1007)


def readme_error_table() -> dict[int, str]:
    """error_code -> HTTP column of the README's code table."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| error_code | HTTP | meaning |") + 2
    rows = [line.split("|")[1:3] for line in itertools.takewhile(lambda line: line.startswith("|"), lines[start:])]
    return {int(code): status.strip() for code, status in rows}


@pytest.mark.gen_test
async def test_error_catalog_and_the_readme_table_list_the_same_codes_and_statuses(api):
    response = await api.get("/v1/errors")
    assert response.status == 200
    served = {e["error_code"]: e["http_status"] for e in response.body["data"]}
    documented = readme_error_table()
    assert set(documented) == set(served)
    assert {code: int(status) for code, status in documented.items() if status.isdigit()} == {
        code: status for code, status in served.items() if code != HTTPFailure.code}
    assert documented[HTTPFailure.code] == "real status"  # 1007 keeps the status it is raised with
    assert served[HTTPFailure.code] == 404
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| 1007 |"))
    assert all(str(status) in row for status in HTTPFailure.statuses), row


@pytest.mark.gen_test
async def test_error_catalog_in_chinese_keeps_the_codes(api):
    english = await api.get("/v1/errors")
    chinese = await api.get("/v1/errors", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert chinese.status == 200
    assert [e["error_code"] for e in chinese.body["data"]] == [e["error_code"] for e in english.body["data"]]
    by_code = {e["error_code"]: e["message"] for e in chinese.body["data"]}
    assert by_code[1002] == "资源不存在"
    assert by_code[10032] == "令牌已过期"


@pytest.mark.gen_test
async def test_health_lists_nothing_but_its_status_in_chinese_too(api):
    response = await api.get("/v1/health", headers={"Accept-Language": "zh-CN"})
    assert response.status == 200
    assert response.body == {"code": 200, "data": {"status": "ok"}, "message": "ok"}


@pytest.mark.gen_test
async def test_health_and_errors_need_no_token_but_other_reads_do(api):
    for path in ("/v1/health", "/v1/health/ready", "/v1/errors"):
        response = await api.get(path)
        assert response.status == 200, path
        assert response.body["code"] == 200
    protected = await api.get("/v1/tokens/current")
    assert protected.status == 401
    assert protected.body == {"error_code": 1003, "message": "authorization header is missing",
                              "request": "GET /v1/tokens/current"}



async def _migrated_app(url: str) -> PetAPI:
    await migrate_database(url)
    app = make_app(profile_config(database_url=url))
    await app.startup()
    return app


@pytest.mark.slow
@pytest.mark.gen_test(timeout=90)
async def test_database_outage_is_503_1008_and_recovers_without_a_restart(private_mariadb):
    http_client = AsyncHTTPClient(force_instance=True)
    app = await _migrated_app(create_database(private_mariadb.url, "pet_api_outage"))
    try:
        async with serving(app) as base_url:
            api = Api(http_client, base_url)
            user, token = await user_with_token(app)
            assert (await api.get("/v1/health/ready")).status == 200
            assert (await api.get("/v1/users/me", token=token)).status == 200

            private_mariadb.stop()
            for path, headers in (("/v1/health/ready", {}), ("/v1/users/me", {"Authorization": f"Bearer {token}"})):
                start = time.monotonic()
                response = await api.get(path, headers=headers)
                assert time.monotonic() - start < 3, path
                assert response.status == 503, response.body
                assert response.body == {"error_code": 1008, "message": "service unavailable", "request": f"GET {path}"}
                assert int(response.headers["Retry-After"]) > 0
            live = await api.get("/v1/health")  # liveness touches no database
            assert live.status == 200

            private_mariadb.start()
            deadline = time.monotonic() + 15
            while (ready := await api.get("/v1/health/ready")).status != 200:
                assert time.monotonic() < deadline, ready.body
                await asyncio.sleep(0.2)
            assert ready.body == {"code": 200, "data": {"status": "ok"}, "message": "ok"}
            me = await api.get("/v1/users/me", token=token)
            assert me.status == 200, me.body
            assert me.body["data"]["id"] == user.id
    finally:
        http_client.close()
        await app.shutdown()


@pytest.mark.gen_test(timeout=30)
async def test_with_several_database_hosts_ready_and_metrics_show_the_writer_and_every_node(mysql_url):
    dead = f"127.0.0.1:{free_port()}"
    live = mysql_url.split("@", 1)[1].split("/", 1)[0]
    app = make_app(profile_config(database_url=f"mysql://root@{dead},{live}/pet_api_test"))
    await app.startup()
    http_client = AsyncHTTPClient(force_instance=True)
    try:
        async with serving(app) as base_url:
            api = Api(http_client, base_url)
            ready = await api.get("/v1/health/ready")
            assert ready.status == 200
            assert ready.body == {"code": 200, "message": "ok", "data": {"status": "ok", "writer": live, "nodes": [
                {"node": dead, "state": "down", "writer": False,
                 "detail": "cannot connect (connection refused, or the host is unreachable)"},
                {"node": live, "state": "ready", "detail": "plain server", "writer": True}]}}
            metrics = await scrape(api)
            assert [metrics[key("pet_api_db_node_ready", node=node)] for node in (dead, live)] == [0.0, 1.0]
            assert [metrics[key("pet_api_db_node_writer", node=node)] for node in (dead, live)] == [0.0, 1.0]
    finally:
        http_client.close()
        await app.shutdown()

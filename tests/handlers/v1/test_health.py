"""Liveness, readiness and the error catalog."""

import pytest

from server.errors import ERROR_CLASSES


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
                     1008: 503, 1009: 412, 10031: 401, 10032: 401, 10033: 401}
    assert len(response.body["data"]) == len(ERROR_CLASSES)


@pytest.mark.gen_test
async def test_error_catalog_in_chinese_keeps_the_codes(api):
    english = await api.get("/v1/errors")
    chinese = await api.get("/v1/errors", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert chinese.status == 200
    assert [e["error_code"] for e in chinese.body["data"]] == [e["error_code"] for e in english.body["data"]]
    by_code = {e["error_code"]: e["message"] for e in chinese.body["data"]}
    assert by_code[1002] == "资源不存在"
    assert by_code[10032] == "令牌已过期"

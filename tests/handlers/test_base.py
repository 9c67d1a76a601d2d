"""The one response contract: envelopes, errors from every source, CORS, request ids, languages, body limits."""

import asyncio
import email.utils
import json
import re
import time
from typing import Any

import pytest
import tornado

from server.handlers.base import client_address
from tests.factories import JSON_TYPE, PASSWORD, assert_error, serving

BOOM = "tests.handlers.boom_plugin"
ORIGIN = "https://app.example.com"  # allowed by the test profile


@pytest.fixture
def config_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"plugins": ["core", "accounts", BOOM], **getattr(request, "param", {})}


@pytest.mark.gen_test
async def test_unknown_route_is_404_1007_without_the_query_string(api):
    response = await api.get("/v1/nope?token=secret&x=1")
    assert_error(response, 404, 1007, "GET /v1/nope")
    assert response.body == {"error_code": 1007, "message": "no such route", "request": "GET /v1/nope"}
    outside = await api.post("/nope/at/all", json={})
    assert_error(outside, 404, 1007, "POST /nope/at/all")


async def read_answer(reader: asyncio.StreamReader, head_only: bool = False) -> tuple[str, dict[str, str], bytes]:
    """One answer off a keep-alive connection: status line, headers, and the body its Content-Length gives (none
    to a HEAD)."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
    status, *lines = head.rstrip("\r\n").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    body = b"" if head_only else await asyncio.wait_for(
        reader.readexactly(int(headers.get("Content-Length", "0"))), 10)
    return status, headers, body


@pytest.mark.gen_test
async def test_an_unknown_route_keeps_the_keep_alive_connection_for_the_next_request(app):
    """RFC 9112 9.6: a connection is closed only after a response saying so; a 404/1007 does not, so the next
    request on the connection is answered (the body sent to the unknown route, of any size, is read and dropped)."""
    limit = app.config.max_body_size
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for method, path, extra in [
                ("GET", "/v1/nowhere", b"\r\n"), ("GET", "/v1/users/abc", b"\r\n"), ("HEAD", "/v1/nope", b"\r\n"),
                ("OPTIONS", "/v1/nope", b"\r\n"), ("DELETE", "/v1/nope", b"\r\n"),
                ("POST", "/v1/nope", b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
                ("PUT", "/v1/nope", b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
                ("PATCH", "/v1/nope", f"Content-Length: {limit + 1}\r\n\r\n".encode() + b"x" * (limit + 1))]:
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra)
            status, headers, body = await read_answer(reader, head_only=method == "HEAD")
            assert (status, headers.get("Connection")) == ("HTTP/1.1 404 Not Found", None), (method, path)
            if method != "HEAD":
                assert json.loads(body) == {"error_code": 1007, "message": "no such route",
                                            "request": f"{method} {path}"}
            writer.write(b"POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 2\r\n\r\n{}")
            status, headers, body = await read_answer(reader)
            assert status == "HTTP/1.1 400 Bad Request", (method, path)
            assert json.loads(body)["request"] == "POST /v1/tokens"
        writer.close()


@pytest.mark.gen_test
async def test_a_method_refused_before_its_body_is_read_says_connection_close(app):
    """Tornado refuses a method it does not know before reading the body and then ends the connection: the 405
    says so (RFC 9112 9.6), and the server closes only after it."""
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        for path, allow in (("/v1/health", "GET, HEAD, OPTIONS"), ("/v1/nope", "")):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"BREW {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode())
            status, headers, body = await read_answer(reader)
            assert (status, headers["Connection"], headers["Allow"]) == ("HTTP/1.1 405 Method Not Allowed", "close",
                                                                         allow)
            assert json.loads(body) == {"error_code": 1007, "message": "method not allowed",
                                        "request": f"BREW {path}"}
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()


@pytest.mark.gen_test
async def test_wrong_method_is_405_1007_with_allow(api):
    response = await api.delete("/v1/health")
    assert_error(response, 405, 1007, "DELETE /v1/health")
    assert response.body["message"] == "method not allowed"
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    odd = await api.request("BREW", "/v1/users")
    assert_error(odd, 405, 1007, "BREW /v1/users")
    assert odd.headers["Allow"] == "GET, HEAD, POST, OPTIONS"


@pytest.mark.parametrize("raw", [b"{bad", b"[1, 2]", b"", b'"text"', b"\xff\xfe"])
@pytest.mark.gen_test
async def test_body_that_is_not_a_json_object_is_400_1001(api, raw):
    response = await api.post("/v1/users", body=raw)
    assert_error(response, 400, 1001, "POST /v1/users")
    assert response.body["errors"][0]["field"] == "body"


@pytest.mark.gen_test
async def test_unexpected_exception_is_500_999_without_a_trace(api):
    response = await api.get("/v1/boom")
    assert_error(response, 500, 999, "GET /v1/boom")
    assert response.body == {"error_code": 999, "message": "server error", "request": "GET /v1/boom"}
    assert b"boom" not in response.raw.replace(b"/v1/boom", b"")


@pytest.mark.parametrize("config_overrides", [{"debug": True}], indirect=True)
@pytest.mark.gen_test
async def test_unexpected_exception_carries_the_trace_in_debug(api):
    response = await api.get("/v1/boom")
    assert response.status == 500
    assert response.body["error_code"] == 999
    assert response.body["request"] == "GET /v1/boom"
    assert "RuntimeError: boom: an unexpected failure" in response.body["trace"]
    assert "Traceback" in response.body["trace"]
    handled = await api.get("/v1/nope")  # only unexpected failures carry a trace
    assert "trace" not in handled.body


@pytest.mark.gen_test
async def test_every_response_is_json_utf8(api):
    user = await api.post("/v1/users", json={"email": "ct@example.com", "password": PASSWORD, "nickname": "Zoë"})
    responses = [
        await api.get("/v1/health"),
        user,
        await api.get("/v1/users/me"),
        await api.get("/v1/users/me", token="bad.token.sig"),
        await api.get("/v1/nope"),
        await api.delete("/v1/health"),
        await api.get("/v1/boom"),
        await api.post("/v1/users", body=b"{bad"),
    ]
    assert [r.status for r in responses] == [200, 201, 401, 401, 404, 405, 500, 400]
    for response in responses:
        assert response.headers["Content-Type"] == JSON_TYPE
    assert user.body["data"]["nickname"] == "Zoë"
    assert "Zoë".encode() in user.raw  # real UTF-8, not \u escapes the client must undo


@pytest.mark.parametrize("config_overrides", [{"plugins": ["core", "accounts", "pets", "records", "reminders", BOOM]}],
                         indirect=True)
@pytest.mark.gen_test
async def test_every_response_forbids_sniffing_framing_and_referrers(api):
    token = await api.token((await api.post("/v1/users", json={
        "email": "hdr@example.com", "password": PASSWORD, "nickname": "h"})).body["data"]["email"])
    feed = await api.post("/v1/users/me/calendar", token=token)
    responses = [
        await api.get("/v1/health"),
        await api.get("/v1/users/me", token=token),
        await api.get("/v1/users/me", token="bad.token.sig"),
        await api.get("/v1/nope"),
        await api.delete("/v1/health"),
        await api.get("/v1/boom"),
        await api.post("/v1/users", body=b"{bad"),
        await api.request("OPTIONS", "/v1/users/me", headers={"Origin": ORIGIN,
                                                               "Access-Control-Request-Method": "GET"}),
        feed,
        await api.get(feed.body["data"]["url"]),
    ]
    assert [r.status for r in responses] == [200, 200, 401, 404, 405, 500, 400, 204, 201, 200]
    for response in responses:
        assert (response.headers["X-Content-Type-Options"], response.headers["Content-Security-Policy"],
                response.headers["Referrer-Policy"]) == (
            "nosniff", "default-src 'none'; frame-ancestors 'none'", "no-referrer"), response.status
    assert feed.headers["Cache-Control"] == "no-store"  # its URL is a credential, as a token answer's is


@pytest.mark.gen_test
async def test_cors_preflight_is_204_with_methods_and_headers(api):
    response = await api.request("OPTIONS", "/v1/users/me", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type, if-match"})
    assert response.status == 204
    assert response.raw == b""
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD, DELETE, PATCH, OPTIONS"
    assert response.headers["Allow"] == "GET, HEAD, DELETE, PATCH, OPTIONS"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match"} <= allowed
    assert "X-Request-ID" in response.headers


@pytest.mark.gen_test
async def test_options_without_origin_says_what_the_resource_allows(api):
    # Not a preflight: a client asking what it may do with a resource (RFC 9110 9.3.7) reads Allow, as a 405's.
    users, me = await api.request("OPTIONS", "/v1/users"), await api.request("OPTIONS", "/v1/users/me")
    assert (users.status, users.raw, users.headers["Allow"]) == (204, b"", "GET, HEAD, POST, OPTIONS")
    assert (me.status, me.raw, me.headers["Allow"]) == (204, b"", "GET, HEAD, DELETE, PATCH, OPTIONS")
    refused = await api.request("PUT", "/v1/users", body=b"{}", headers={"Content-Type": "application/json"})
    assert_error(refused, 405, 1007, "PUT /v1/users")
    assert refused.headers["Allow"] == users.headers["Allow"]


@pytest.mark.gen_test
async def test_errors_carry_the_same_cors_headers_as_successes(api):
    ok = await api.get("/v1/health", headers={"Origin": ORIGIN})
    missing = await api.get("/v1/nope", headers={"Origin": ORIGIN})
    unauthorized = await api.get("/v1/users/me", headers={"Origin": ORIGIN})
    crashed = await api.get("/v1/boom", headers={"Origin": ORIGIN})
    assert [r.status for r in (ok, missing, unauthorized, crashed)] == [200, 404, 401, 500]
    for response in (ok, missing, unauthorized, crashed):
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    assert ok.headers["Vary"] == "Origin"
    assert [r.headers["Vary"] for r in (missing, unauthorized, crashed)] == ["Origin, Accept-Language"] * 3


@pytest.mark.gen_test
async def test_an_origin_not_allowed_gets_no_cors_grant(api):
    response = await api.get("/v1/health", headers={"Origin": "https://evil.example"})
    assert response.status == 200
    assert response.body["data"] == {"status": "ok"}
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("config_overrides", [{}, {"cors_allow_origins": ["*"]}], indirect=True)
@pytest.mark.gen_test
async def test_with_cors_on_every_answer_varies_on_origin_granted_or_not(api):
    # A cache must not serve an answer made without a grant (no Origin, or one not allowed) to the allowed front
    # end, nor the reverse: each such answer says that it depends on Origin (Fetch, "CORS protocol and HTTP
    # caches"; audit asvs F2). With ["*"] the grant is sent only to a request carrying Origin: the same holds.
    answers = {"allowed": await api.get("/v1/health", headers={"Origin": ORIGIN}),
               "not allowed": await api.get("/v1/health", headers={"Origin": "https://evil.example"}),
               "no Origin": await api.get("/v1/health"),
               "error, no Origin": await api.get("/v1/nope"),
               "preflight, not allowed": await api.request("OPTIONS", "/v1/users/me", headers={
                   "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})}
    assert {name: a.status for name, a in answers.items()} == {
        "allowed": 200, "not allowed": 200, "no Origin": 200, "error, no Origin": 404, "preflight, not allowed": 204}
    assert {name: a.headers.get("Vary") for name, a in answers.items()} == {
        **dict.fromkeys(answers, "Origin"), "error, no Origin": "Origin, Accept-Language"}
    assert answers["no Origin"].body == answers["allowed"].body == {"code": 200, "data": {"status": "ok"},
                                                                      "message": "ok"}
    assert "Access-Control-Allow-Origin" not in answers["no Origin"].headers
    assert_error(answers["error, no Origin"], 404, 1007, "GET /v1/nope")


@pytest.mark.parametrize("config_overrides", [{"cors_allow_origins": []}], indirect=True)
@pytest.mark.gen_test
async def test_without_cors_answers_do_not_vary_on_origin(api):
    answers = [await api.get("/v1/health", headers={"Origin": ORIGIN}), await api.get("/v1/health")]
    assert [(a.status, a.body["data"], "Vary" in a.headers, "Access-Control-Allow-Origin" in a.headers)
            for a in answers] == [(200, {"status": "ok"}, False, False)] * 2


@pytest.mark.parametrize("config_overrides", [{"cors_allow_origins": []}], indirect=True)
@pytest.mark.gen_test
async def test_answers_in_the_callers_language_vary_on_accept_language(api):
    # An error's message and the error catalog are English or Chinese by Accept-Language: a shared cache that may
    # keep a 404 (heuristically cacheable, RFC 9111 4.2.2) or the catalog must not hand one language's answer to a
    # caller asking for the other (RFC 9110 12.5.5). A success whose body does not depend on it says nothing.
    zh = {"Accept-Language": "zh"}
    missing, catalog, ok = (await api.get("/v1/nope", headers=zh), await api.get("/v1/errors", headers=zh),
                            await api.get("/v1/health", headers=zh))
    assert_error(missing, 404, 1007, "GET /v1/nope")
    assert missing.body["message"] == "路由不存在"
    assert catalog.status == 200
    assert next(e["message"] for e in catalog.body["data"] if e["error_code"] == 1002) == "资源不存在"
    assert ok.status == 200 and ok.body["data"] == {"status": "ok"}
    assert [missing.headers.get("Vary"), catalog.headers.get("Vary"), ok.headers.get("Vary")] == [
        "Accept-Language", "Accept-Language", None]


@pytest.mark.gen_test
async def test_a_sane_request_id_is_echoed(api):
    ok = await api.get("/v1/health", headers={"X-Request-ID": "abc-123.DEF_456:7"})
    failed = await api.get("/v1/nope", headers={"X-Request-ID": "abc-123.DEF_456:7"})
    assert (ok.status, failed.status) == (200, 404)
    assert ok.headers["X-Request-ID"] == failed.headers["X-Request-ID"] == "abc-123.DEF_456:7"


@pytest.mark.parametrize("sent", [None, "has spaces in it", "x" * 200, "<script>", "new\\nline"])
@pytest.mark.gen_test
async def test_an_absent_or_insane_request_id_is_replaced(api, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}
    first = await api.get("/v1/nope", headers=headers)
    second = await api.get("/v1/nope", headers=headers)
    assert first.status == second.status == 404
    assert first.body["error_code"] == 1007
    assert re.fullmatch(r"[0-9a-f]{24}", first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.gen_test
async def test_chinese_messages_keep_the_codes(api):
    zh = {"Accept-Language": "zh-CN,zh;q=0.9"}
    english = [await api.get("/v1/nope"), await api.get("/v1/users/me"), await api.post("/v1/users", body=b"{bad"),
               await api.get("/v1/boom")]
    chinese = [await api.get("/v1/nope", headers=zh), await api.get("/v1/users/me", headers=zh),
               await api.post("/v1/users", body=b"{bad", headers=zh), await api.get("/v1/boom", headers=zh)]
    assert [r.status for r in chinese] == [r.status for r in english] == [404, 401, 400, 500]
    assert [r.body["error_code"] for r in chinese] == [r.body["error_code"] for r in english] == [1007, 1003, 1001, 999]
    # the specific message in Chinese where there is one (server/i18n.py), else the code's own
    assert [r.body["message"] for r in chinese] == [
        "路由不存在", "缺少 Authorization 请求头", "JSON 格式错误", "服务器错误"]
    assert english[1].body["message"] == "authorization header is missing"
    preferred_english = await api.get("/v1/nope", headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"})
    assert preferred_english.body["message"] == "no such route"


@pytest.mark.gen_test
async def test_a_language_weighted_zero_is_not_acceptable(api):
    """RFC 9110 12.4.2: q=0 means "not acceptable", so Chinese refused that way answers in English."""
    for accept, message in (("zh;q=0", "no such route"), ("zh-CN;q=0.0, fr", "no such route"),
                            ("zh ; q=0", "no such route"), ("zh-TW;level=1;q=0", "no such route"),
                            ("en;q=0, zh;q=0.1", "路由不存在"), ("zh;q=0.001", "路由不存在")):
        response = await api.get("/v1/nope", headers={"Accept-Language": accept})
        assert_error(response, 404, 1007, "GET /v1/nope", message)


@pytest.mark.gen_test
async def test_chinese_only_when_it_weighs_more_than_english_counting_the_wildcard(api):
    """README: Chinese when it weighs more than English, so a tie is English. RFC 4647 3.3.1: `*` weighs for the
    languages no other range names (English when only zh is listed, and the other way round)."""
    for accept, message in (("zh;q=0.5, *", "no such route"), ("*;q=0.5, zh;q=0.1", "no such route"),
                            ("zh, en", "no such route"), ("en, zh", "no such route"),
                            ("zh;q=0.8 , en;q=0.80", "no such route"), ("en;q=0.5,zh;q=0.5", "no such route"),
                            ("*", "no such route"), ("zh;q=0, *", "no such route"),
                            ("*, en;q=0.5", "路由不存在"), ("zh, *;q=0.9", "路由不存在"),
                            ("zh, en;q=0.9", "路由不存在"), ("fr, *;q=0.1, en;q=0", "路由不存在"),
                            ("zh-TW;q=0.3, zh-CN;q=0.9, en;q=0.5", "路由不存在")):
        response = await api.get("/v1/nope", headers={"Accept-Language": accept})
        assert response.status == 404, accept
        assert response.body == {"error_code": 1007, "message": message, "request": "GET /v1/nope"}, accept


@pytest.mark.gen_test
async def test_body_over_max_body_size_is_413_1007(api, app):
    limit = app.config.max_body_size
    response = await api.post("/v1/boom", body=b"x" * (limit + 1))
    assert_error(response, 413, 1007, "POST /v1/boom")
    assert response.body["message"] == "request body is too large"
    at_limit = await api.post("/v1/boom", body=b"x" * limit)
    assert at_limit.status == 200
    assert at_limit.body == {"code": 200, "data": {"received": limit}, "message": "ok"}


@pytest.mark.gen_test
async def test_a_chunked_body_over_the_limit_is_413_1007(api, app):
    limit = app.config.max_body_size

    async def producer(write: Any) -> None:
        for _ in range(3):
            await write(b"y" * (limit // 2 + 1))

    from tornado.httpclient import HTTPRequest

    request = HTTPRequest(api.base_url + "/v1/boom", method="POST", body_producer=producer,
                          headers={"Content-Type": "application/json"})
    response = await api.client.fetch(request, raise_error=False)
    import orjson

    assert response.code == 413
    assert orjson.loads(response.body) == {"error_code": 1007, "message": "request body is too large",
                                           "request": "POST /v1/boom"}


@pytest.mark.parametrize("config_overrides", [{"plugins": ["core"]}], indirect=True)
@pytest.mark.gen_test
async def test_a_plugin_not_listed_has_no_routes(api, app):
    assert {plugin for *_, plugin in app.route_table()} == {"core"}
    response = await api.post("/v1/users", json={"email": "x@example.com", "password": PASSWORD, "nickname": "x"})
    assert_error(response, 404, 1007, "POST /v1/users")
    tokens = await api.login("x@example.com", PASSWORD)
    assert_error(tokens, 404, 1007, "POST /v1/tokens")
    assert (await api.get("/v1/health")).status == 200


@pytest.mark.gen_test
async def test_success_envelope_shapes(api):
    health = await api.get("/v1/health")
    assert health.body == {"code": 200, "data": {"status": "ok"}, "message": "ok"}
    created = await api.post("/v1/users", json={"email": "env@example.com", "password": PASSWORD, "nickname": "e"})
    assert created.status == 201
    assert created.body["code"] == 201
    assert created.body["message"] == "ok"
    login = await api.login("env@example.com", PASSWORD)
    logout = await api.delete("/v1/tokens/current", token=login.body["data"]["token"])
    assert logout.status == 200
    assert logout.body == {"code": 200, "data": None, "message": "ok"}  # an absent object is null


@pytest.mark.gen_test
async def test_a_body_declared_as_another_media_type_is_415_1007(api):
    response = await api.post("/v1/users", body=b"<user/>", headers={"Content-Type": "application/xml"})
    assert_error(response, 415, 1007, "POST /v1/users")
    assert response.body["message"] == "Content-Type must be application/json"


@pytest.mark.gen_test
async def test_every_answer_starts_with_the_same_headers_and_a_current_date(api):
    before = time.time()
    responses = [await api.get("/v1/health"), await api.get("/v1/nope"), await api.delete("/v1/health")]
    after = time.time()
    assert [r.status for r in responses] == [200, 404, 405]
    assert responses[1].body == {"error_code": 1007, "message": "no such route", "request": "GET /v1/nope"}
    for response in responses:
        assert response.headers["Server"] == f"TornadoServer/{tornado.version}"
        assert response.headers["Content-Type"] == JSON_TYPE
        date = email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
        assert int(before) <= date <= after, response.headers["Date"]


@pytest.mark.parametrize(("remote_ip", "address"), [
    ("::ffff:127.0.0.1", "127.0.0.1"), ("::FFFF:7f00:1", "127.0.0.1"), ("::ffff:203.0.113.9", "203.0.113.9"),
    ("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("2001:db8::1", "2001:db8::1"), ("fe80::1%eth0", "fe80::1%eth0"),
    ("not-an-address:", "not-an-address:"), (None, None),
])
def test_an_ipv4_mapped_client_address_is_its_ipv4_address(remote_ip, address):
    assert client_address(remote_ip) == address

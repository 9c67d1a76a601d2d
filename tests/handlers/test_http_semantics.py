"""HTTP as RFC 9110 has it: HEAD wherever GET, JSON bodies only (no cross-origin form or text/plain posts), and
query parameters that are either declared or refused, naming them."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httputil import HTTPHeaders

from tests.factories import assert_error, both_backends, create_pet, serving, user_with_token
from tests.processes import ROOT, ServerProcess, clean_env
from tests.test_main import FAST_HASH


@both_backends
@pytest.mark.gen_test
async def test_head_answers_what_get_answers_without_the_body(app, api):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    for path in (f"/v1/pets/{pet['id']}", "/v1/pets?limit=5", "/v1/health", f"/v1/pets/{pet['id']}/records"):
        got = await api.get(path, token=token)
        head = await api.request("HEAD", path, token=token)
        assert (head.status, head.raw) == (got.status, b""), path
        for name in ("Content-Type", "ETag", "Cache-Control"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    missing = await api.request("HEAD", "/v1/pets/999999", token=token)
    assert (missing.status, missing.raw) == (404, b"")
    refused = await api.request("HEAD", "/v1/tokens")  # POST only: HEAD is as unknown as GET there
    assert refused.status == 405
    assert "HEAD" not in refused.headers["Allow"] and "POST" in refused.headers["Allow"]
    assert "HEAD" in (await api.request("OPTIONS", "/v1/pets")).headers["Access-Control-Allow-Methods"]


@both_backends
@pytest.mark.gen_test
async def test_a_body_that_is_not_json_by_its_content_type_is_415_and_creates_nothing(app, api):
    _, token = await user_with_token(app)
    json_text = b'{"name": "Sneaky", "species": "dog"}'
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "",
                  "application/jsonx", "text/json", "text/x+json", "application/+json"):
        answer = await api.post("/v1/pets", body=json_text, token=token, headers={"Content-Type": ctype})
        assert_error(answer, 415, 1007, "POST /v1/pets", "Content-Type must be application/json")
        signup = await api.post("/v1/users", body=b'{"email": "x@example.com", "password": "long-password-1",'
                                b' "nickname": "X"}', headers={"Content-Type": ctype})
        assert_error(signup, 415, 1007, "POST /v1/users", "Content-Type must be application/json")
    assert (await api.get("/v1/pets", token=token)).body["data"] == []
    # JSON under a structured-syntax suffix (RFC 6839) is JSON: a client sending its PATCH as a JSON merge patch
    # (RFC 7396, what this API's PATCH is) is understood; none of these is sent cross-origin without a preflight.
    for ctype in ("application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                  "application/merge-patch+json", "application/vnd.pet-api+json"):
        created = await api.post("/v1/pets", body=json_text, token=token, headers={"Content-Type": ctype})
        assert (created.status, created.body["data"]["name"]) == (201, "Sneaky"), ctype


@both_backends
@pytest.mark.gen_test
async def test_a_body_sent_to_an_operation_that_takes_none_is_refused_and_nothing_is_done(app, api):
    """README: a request body must be application/json; an operation that takes none does not run with one (a
    text/plain body to POST /v1/users/me/calendar replaced the caller's feed: 201). 415 when it is not labelled
    JSON, 400 naming body when it is; an empty body is fine."""
    _, token = await user_with_token(app)
    feed = await api.post("/v1/users/me/calendar", token=token)
    assert feed.status == 201
    for ctype, raw in (("text/plain", b"this is not JSON"), ("application/x-www-form-urlencoded", b"a=1"),
                       ("application/json", b"not json"), ("application/json", b'{"rotate": true}')):
        answer = await api.post("/v1/users/me/calendar", body=raw, token=token, headers={"Content-Type": ctype})
        if raw == b"not json":
            assert_error(answer, 400, 1001, "POST /v1/users/me/calendar", "malformed JSON")
        elif ctype == "application/json":
            assert_error(answer, 400, 1001, "POST /v1/users/me/calendar", "this operation takes no request body")
            assert answer.body["errors"] == [{"field": "body", "message": "must be empty"}]
        else:
            assert_error(answer, 415, 1007, "POST /v1/users/me/calendar", "Content-Type must be application/json")
    assert (await api.get(feed.body["data"]["url"])).status == 200  # the feed was not replaced
    emptied = await api.post("/v1/users/me/calendar", body=b" {} ", token=token)  # says nothing: as no body
    assert emptied.status == 201 and emptied.body["data"]["url"] != feed.body["data"]["url"]
    pet = await create_pet(api, token)
    refused = await api.delete(f"/v1/pets/{pet['id']}", body=b"x", token=token, headers={"Content-Type": "text/plain"})
    assert_error(refused, 415, 1007, f"DELETE /v1/pets/{pet['id']}")
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).status == 200
    assert (await api.delete(f"/v1/pets/{pet['id']}", token=token)).status == 200


@both_backends
@pytest.mark.gen_test
async def test_unknown_and_repeated_query_parameters_are_400_naming_them(app, api):
    _, token = await user_with_token(app)
    _, admin_token = await user_with_token(app, role="admin")
    pet = await create_pet(api, token)
    cases = [
        ("/v1/pets?specie=cat", token, [{"field": "specie", "message": "unknown parameter"}]),
        ("/v1/pets?species=cat&species=dog", token, [{"field": "species", "message": "given more than once"}]),
        (f"/v1/pets/{pet['id']}?fields=name", token, [{"field": "fields", "message": "unknown parameter"}]),
        ("/v1/users?email=ann@example.com", admin_token, [{"field": "email", "message": "unknown parameter"}]),
        ("/v1/pets?limit=1&limit=2&offset=0&offset=0", token, [
            {"field": "limit", "message": "given more than once"},
            {"field": "offset", "message": "given more than once"}]),
    ]
    for path, caller, errors in cases:
        answer = await api.get(path, token=caller)
        assert_error(answer, 400, 1001, f"GET {path.split('?')[0]}")
        assert answer.body["errors"] == errors, path
    fine = await api.get("/v1/pets?species=dog&limit=5", token=token)
    assert (fine.status, [p["id"] for p in fine.body["data"]]) == (200, [pet["id"]])


@pytest.mark.gen_test
async def test_metrics_refuses_unknown_and_repeated_query_parameters_as_every_route(api):
    """README: an unknown or repeated query parameter is 400/1001 naming it; /metrics answered the whole exposition
    (prometheus_client's own name[] filter included)."""
    for query, errors in (("no_such_param=1&no_such_param=2", [{"field": "no_such_param",
                                                                "message": "given more than once"}]),
                          ("name[]=pet_api_requests_total", [{"field": "name[]", "message": "unknown parameter"}])):
        answer = await api.get(f"/metrics?{query}")
        assert_error(answer, 400, 1001, "GET /metrics")
        assert answer.body["errors"] == errors, query
    assert b"pet_api_requests_total" in (await api.get("/metrics")).raw


@pytest.mark.gen_test
async def test_a_query_string_that_is_not_utf8_names_the_parameter(app, api):
    _, token = await user_with_token(app)
    for query, errors in (
            ("q=%ff", [{"field": "q", "message": "must be UTF-8"}]),
            ("limit=5&caf%C3%A9=%C3%28&q=%FF%FE", [{"field": "café", "message": "must be UTF-8"},
                                                     {"field": "q", "message": "must be UTF-8"}]),
            ("%ff=%ff", [{"field": "query", "message": "must be UTF-8"}])):  # the name itself: it cannot be told
        answer = await api.get(f"/v1/pets?{query}", token=token)
        assert_error(answer, 400, 1001, "GET /v1/pets", "query string is not UTF-8")
        assert answer.body["errors"] == errors, query
    chinese = await api.get("/v1/pets?q=%ff", token=token, headers={"Accept-Language": "zh-CN"})
    assert chinese.body["errors"] == [{"field": "q", "message": "必须是 UTF-8 编码"}]


def test_the_readmes_curl_tour_works_as_written(tmp_path):
    tour = re.search(r"Try it:\n\n```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert tour is not None
    env = clean_env(PET_API_DATABASE_URL=f"sqlite:///{tmp_path}/tour.sqlite3", **FAST_HASH)
    with ServerProcess(tmp_path / "server.log", env, profile="dev") as server:
        script = tour.group(1).replace("localhost:8000", f"127.0.0.1:{server.port}")
        ran = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60,
                             env={**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"})
    assert ran.returncode == 0, ran.stderr
    answers, text, decoder = [], ran.stdout.strip(), json.JSONDecoder()
    while text:  # the bodies follow each other without newlines
        answer, end = decoder.raw_decode(text)
        answers.append(answer)
        text = text[end:].strip()
    assert [a["code"] for a in answers] == [200, 201, 201, 200], ran.stdout  # health, the user, the pet, the list
    assert answers[1]["data"]["email"] == "ann@example.com"
    assert (answers[2]["data"]["name"], answers[2]["data"]["role"]) == ("Rex", "owner")
    assert ([p["name"] for p in answers[3]["data"]], answers[3]["page"]["total"]) == (["Rex"], 1)


@both_backends
@pytest.mark.gen_test
async def test_every_401_names_the_bearer_scheme_and_a_bad_token_says_invalid_token(app, api):
    user, token = await user_with_token(app)
    cases = [
        ({}, 1003, 'Bearer realm="pet-api"'),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 1003, 'Bearer realm="pet-api"'),
        ({"Authorization": "Bearer not-a-token"}, 10031, 'Bearer realm="pet-api", error="invalid_token"'),
        ({"Authorization": f"Bearer {token[:-2]}xx"}, 10031, 'Bearer realm="pet-api", error="invalid_token"'),
    ]
    for headers, code, challenge in cases:
        answer = await api.get("/v1/pets", headers=headers)
        assert_error(answer, 401, code, "GET /v1/pets")
        assert answer.headers["WWW-Authenticate"] == challenge, headers
    wrong_password = await api.post("/v1/tokens", json={"account": user.email, "secret": "not-the-password"})
    assert wrong_password.status == 401 and wrong_password.headers["WWW-Authenticate"] == 'Bearer realm="pet-api"'
    fine = await api.get("/v1/pets", token=token)
    assert fine.status == 200 and "WWW-Authenticate" not in fine.headers


# What docs/security.md promises on every answer, errors included (3.4.4, 3.4.6).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
                    "Referrer-Policy": "no-referrer"}
MALFORMED = [
    (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "POST /v1/users"),
    (b"GET /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: [~pqR\r\n\r\n", "GET /v1/users"),
    (b"GET /v1/pets?x=1 HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n", "GET /v1/pets"),
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "GET /v1/health"),
    (b"NOT-HTTP\r\n\r\n", "- -"),
    (b"GET /v1/pets?" + b"&".join(b"f%d=1" % i for i in range(1001)) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     "GET /v1/pets"),  # more query fields than tornado parses (1,000)
]


@pytest.mark.gen_test
async def test_a_request_tornado_cannot_parse_gets_an_error_shaped_400_with_a_request_id_and_a_log_line(app, caplog):
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        for raw, request in MALFORMED:
            caplog.clear()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)  # then the server closes the connection
            writer.close()
            head, _, body = answer.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = HTTPHeaders(dict(line.split(": ", 1) for line in lines[1:]))
            assert lines[0] == "HTTP/1.1 400 Bad Request", raw
            assert (headers["Content-Type"], headers["Connection"]) == ("application/json; charset=UTF-8", "close")
            assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS  # as every answer
            assert re.fullmatch(r"[0-9a-f]{24}", headers["X-Request-ID"])
            assert json.loads(body) == {"error_code": 1001, "message": "malformed HTTP request", "request": request}
            assert int(headers["Content-Length"]) == len(body)
            logged = [r for r in caplog.records if r.name == "pet_api.access"]
            assert [(r.status, r.request_id, f"{r.method} {r.path}") for r in logged] == [
                (400, headers["X-Request-ID"], request)]


@pytest.mark.gen_test
async def test_a_request_target_in_absolute_form_is_served_as_its_path(app):
    """RFC 9112 3.2.2: a server must accept `GET http://host/path`; its authority stands for Host."""
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        for target, answer in [(f"http://127.0.0.1:{port}/v1/health", "200 OK"),
                               ("HTTP://pets.example/v1/health?", "200 OK"),
                               ("http://user:secret@pets.example/v1/health", "200 OK"),
                               ("https://pets.example/v1/pets?limit=5", "401 Unauthorized")]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {target} HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            status, headers, body = parse_answer(await asyncio.wait_for(reader.read(), 10))
            writer.close()
            assert status == f"HTTP/1.1 {answer}", (target, body)
            if answer == "200 OK":
                assert json.loads(body)["data"]["status"] == "ok", body
            else:
                assert json.loads(body)["request"] == "GET /v1/pets", body


@pytest.mark.gen_test
async def test_percent_encoded_unreserved_characters_of_a_path_name_the_same_resource(app, api):
    # RFC 3986 6.2.2.2, RFC 9110 4.2.3: %31 is "1", %68 is "h"; a client (or proxy) encoding them reaches the same
    # route, as the query's names already did. A reserved one (%2F) keeps its meaning: no route has it.
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    encoded = "".join(f"%{ord(c):02X}" for c in str(pet["id"]))
    same = await api.get(f"/v1/pets/{encoded}", token=token)
    assert (same.status, same.body["data"]) == (200, pet)
    health = await api.get("/v1/%68ealth")
    assert (health.status, health.body["data"]) == (200, {"status": "ok"})
    slash = await api.get("/v1%2Fhealth")
    assert_error(slash, 404, 1007, "GET /v1%2Fhealth")
    wrong = await api.get(f"/v1/pets/%3{str(pet['id'])[0]}x", token=token)
    assert_error(wrong, 404, 1007, f"GET /v1/pets/{str(pet['id'])[0]}x")


def parse_answer(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return lines[0], dict(line.split(": ", 1) for line in lines[1:]), body


@pytest.mark.gen_test
async def test_a_header_block_over_max_header_size_is_an_error_shaped_431_with_a_request_id_and_a_log_line(
        app, caplog):
    limit = app.config.max_header_size
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        for raw, request in [
            (b"GET /v1/pets?limit=5 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * limit + b"\r\n\r\n", "GET /v1/pets"),
            (b"POST /v1/tokens HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * (limit // 10) + b"\r\n{}",
             "POST /v1/tokens"),
            (b"GET /" + b"a" * (limit + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n", "- -"),  # no request line in reach
        ]:
            caplog.clear()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)  # then the server closes the connection
            writer.close()
            status, fields, body = parse_answer(answer)
            headers = HTTPHeaders(fields)
            assert status == "HTTP/1.1 431 Request Header Fields Too Large", request
            assert (headers["Content-Type"], headers["Connection"]) == ("application/json; charset=UTF-8", "close")
            assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS  # as every answer
            assert re.fullmatch(r"[0-9a-f]{24}", headers["X-Request-ID"])
            assert json.loads(body) == {"error_code": 1007, "message": "request header fields too large",
                                        "request": request}
            assert int(headers["Content-Length"]) == len(body)
            logged = [r for r in caplog.records if r.name == "pet_api.access"]
            assert [(r.status, r.request_id, f"{r.method} {r.path}") for r in logged] == [
                (431, headers["X-Request-ID"], request)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # the server goes on serving
        writer.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Fits: " + b"a" * (limit // 2) + b"\r\n\r\n")
        status, _, _ = parse_answer(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10))
        writer.close()
        assert status == "HTTP/1.1 200 OK"


async def raw_answer(port: int, raw: bytes) -> tuple[str, HTTPHeaders, bytes]:
    """Send raw bytes on a new connection; the answer (header names in any case) read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status, headers, body = parse_answer(answer)
    return status, HTTPHeaders(headers), body


REFUSED = [  # (request, its access-log line's method and path, the answer's status and error code)
    (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "POST /v1/users", 400, 1001),
    (b"NOT-HTTP\r\n\r\n", "- -", 400, 1001),
    (b"GET /v1/pets HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", "GET /v1/pets", 431, 1007),
]


@pytest.mark.parametrize("config_overrides", [{"access_log": True}, {"access_log": False}])
@pytest.mark.gen_test
async def test_requests_http_cannot_take_are_counted_and_logged_as_every_answer(app, caplog, config_overrides):
    """A 400 for framing tornado cannot parse and a 431 go to /metrics like any answer (route "unmatched", a method
    no route knows as "other") and to the access log only when it is on."""
    access_log = app.config.access_log
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        for raw, request, status, code in REFUSED:
            caplog.clear()
            answer_status, headers, body = await raw_answer(port, raw)
            assert (int(answer_status.split()[1]), json.loads(body)["error_code"]) == (status, code), request
            logged = [(r.status, r.request_id, f"{r.method} {r.path}") for r in caplog.records
                      if r.name == "pet_api.access"]
            assert logged == ([(status, headers["X-Request-ID"], request)] if access_log else []), request
        scraped = (await raw_answer(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))[2]
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scraped.decode()) for s in family.samples}
    counted = {labels: value for (name, labels), value in samples.items()
               if name == "pet_api_requests_total" and ("route", "unmatched") in labels}
    assert counted == {(("method", "POST"), ("route", "unmatched"), ("status", "400")): 1,
                       (("method", "other"), ("route", "unmatched"), ("status", "400")): 1,
                       (("method", "GET"), ("route", "unmatched"), ("status", "431")): 1}
    assert {code: samples.get(("pet_api_errors_total", (("error_code", code),))) for code in ("1001", "1007")} == \
        {"1001": 2, "1007": 1}


@pytest.mark.parametrize("config_overrides", [{}, {"cors_allow_origins": []}])
@pytest.mark.gen_test
async def test_requests_http_cannot_take_carry_the_headers_of_every_error_answer(app, config_overrides):
    """The 400 and 431 answered before routing carry what an unknown route's 404 carries (Date as RFC 9110 6.6.1
    asks, Vary as on every error answer, the security headers, Server, X-Request-ID), and Connection: close."""
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        _, not_found, _ = await raw_answer(port, b"GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for raw, request, _, _ in REFUSED:
            _, headers, body = await raw_answer(port, raw)
            assert set(headers) == set(not_found), request
            same = ("Server", "Content-Type", "Vary", *SECURITY_HEADERS)
            assert {name: headers[name] for name in same} == {name: not_found[name] for name in same}, request
            assert headers["Vary"] == ("Origin, Accept-Language" if app.config.cors_allow_origins
                                       else "Accept-Language")
            assert abs(parsedate_to_datetime(headers["Date"]).timestamp() - time.time()) < 5, request
            assert (headers["Connection"], int(headers["Content-Length"])) == ("close", len(body)), request
            assert re.fullmatch(r"[0-9a-f]{24}", headers["X-Request-ID"]), request


@both_backends
@pytest.mark.gen_test
async def test_an_id_with_leading_zeros_is_not_an_alias(app, api):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await api.post(f"/v1/pets/{pet['id']}/records", token=token, json={"kind": "weight", "date": "2026-01-02"})
    assert record.status == 201
    for path in (f"/v1/pets/0{pet['id']}", f"/v1/pets/00{pet['id']}/records",
                 f"/v1/pets/{pet['id']}/records/0{record.body['data']['id']}"):
        assert_error(await api.get(path, token=token), 404, 1002, f"GET {path}")
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"]["id"] == pet["id"]


@pytest.mark.gen_test(timeout=60)
async def test_a_body_over_the_connection_cap_is_413_with_connection_close_whether_declared_or_chunked(app):
    """Past the connection-level cap (16 MiB here) a body is still "too large", not framing tornado "cannot parse":
    413/1007 in the error shape, Connection: close, nothing created; a declared length is refused before its
    body is sent (no 100 Continue), a chunked one as soon as the bytes received pass the cap."""
    cap = max(app.config.max_body_size * 4, 16 * 2**20)
    _, token = await user_with_token(app)
    head = (f"POST /v1/pets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n").encode()
    megabyte = b"a" * 2**20
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        declared = head + f"Content-Length: {cap + 1}\r\nExpect: 100-continue\r\n\r\n".encode()
        chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(megabyte), megabyte) for _ in range(cap // len(megabyte) + 1)) + b"0\r\n\r\n"
        for raw in (declared, chunked):
            status, headers, body = await raw_answer(port, raw)
            assert (status.split(" ")[1], headers["Connection"]) == ("413", "close"), body[:200]
            assert json.loads(body) == {"error_code": 1007, "message": "request body is too large",
                                        "request": "POST /v1/pets"}
            assert re.fullmatch(r"[0-9a-f]{24}", headers["X-Request-ID"])
        api_status, _, listed = await raw_answer(port, b"GET /v1/pets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                                 + token.encode() + b"\r\nConnection: close\r\n\r\n")
    assert (api_status.split(" ")[1], json.loads(listed)["data"]) == ("200", [])


@pytest.mark.gen_test
async def test_an_http_1_0_request_with_transfer_encoding_is_refused_as_faulty_framing_and_closed(app):
    """RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding is treated as faulty framing and the connection
    closed (an HTTP/1.0 hop frames it otherwise: request smuggling). Before: the pet was created and the
    pipelined request after it served on the same connection."""
    _, token = await user_with_token(app)
    pet = b'{"name":"TE10","species":"dog"}'
    raw = (f"POST /v1/pets HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
           f"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n").encode() \
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(pet), pet) \
        + b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        status, headers, body = await raw_answer(port, raw)
        assert (status, headers["Connection"]) == ("HTTP/1.1 400 Bad Request", "close")
        assert json.loads(body) == {"error_code": 1001, "message": "malformed HTTP request", "request": "POST /v1/pets"}
        listed = (await raw_answer(port, b"GET /v1/pets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                   + token.encode() + b"\r\nConnection: close\r\n\r\n"))[2]
    assert json.loads(listed)["data"] == []


@pytest.mark.parametrize("config_overrides", [{"header_timeout": 1, "idle_connection_timeout": 30}])
@pytest.mark.gen_test(timeout=30)
async def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(app, config_overrides):
    """A new connection has not sent its first header yet: header_timeout, not the idle keep-alive timeout (it was
    held for idle_connection_timeout, 300 s by default, for the price of a TCP connect)."""
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        began = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        assert 1 <= time.monotonic() - began < 3

"""Logs: one JSON object per line on stdout with the request's fields, never a token, a password or a body;
the level comes from the profile."""

from __future__ import annotations

import io
import logging
import re
import secrets
import shutil
import subprocess

import orjson
import pytest

from server.logs import JSONFormatter, shown_url
from tests.factories import unique_email
from tests.processes import ROOT, free_port, get, request, run_main

PASSWORD = "Sup3r-Secret-Passw0rd"


def test_access_lines_carry_the_request_fields_and_no_secret(servers):
    server = servers.start()
    email = unique_email("logs")
    user = request(server.port, "POST", "/v1/users", json={"email": email, "password": PASSWORD, "nickname": "l"})
    assert user.status == 201
    token = request(server.port, "POST", "/v1/tokens", json={"account": email, "secret": PASSWORD}).json()["data"]
    auth = {"Authorization": f"Bearer {token['token']}", "X-Request-ID": "trace-me-1"}
    pet = request(server.port, "POST", "/v1/pets", json={"name": "Body-Marker-Rex", "species": "dog"}, headers=auth)
    assert pet.status == 201
    wrong = request(server.port, "POST", "/v1/tokens", json={"account": email, "secret": PASSWORD + "x"})
    assert wrong.status == 401
    refused = get(server.port, f"/v1/health?password={PASSWORD}")  # an unknown parameter: named, not echoed
    assert (refused.status, refused.json()["errors"]) == (400, [{"field": "password", "message": "unknown parameter"}])
    assert PASSWORD not in refused.body.decode()
    server.stop()

    output = server.output()
    lines = [orjson.loads(line) for line in output.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "message"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "pet_api.access"]
    assert (access[0]["path"], access[0]["status"]) == ("/v1/health/ready", 200)  # the readiness poll
    access = access[1:]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("POST", "/v1/users", 201), ("POST", "/v1/tokens", 201), ("POST", "/v1/pets", 201),
        ("POST", "/v1/tokens", 401), ("GET", "/v1/health", 400)]
    created_pet = access[2]
    assert created_pet["request_id"] == "trace-me-1"
    assert created_pet["user_id"] == user.json()["data"]["id"]
    assert created_pet["level"] == "INFO" and created_pet["time"].endswith("Z")
    assert all(isinstance(a["duration_ms"], float) and len(a["request_id"]) >= 10 for a in access)
    for secret in (PASSWORD, token["token"], token["token"].split(".")[-1], "Bearer", "Body-Marker-Rex"):
        assert secret not in output


def test_the_level_comes_from_the_profile(servers):
    server = servers.start(PET_API_LOG_LEVEL="WARNING")
    assert get(server.port, "/v1/health").status == 200
    server.stop()
    assert server.output().strip() == ""  # no INFO line: neither "serving" nor the access log


def test_exceptions_are_one_line_of_json():
    stream = io.StringIO()
    record_logger = logging.getLogger("pet_api.test_logs")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    record_logger.addHandler(handler)
    record_logger.propagate = False
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            record_logger.exception("failed", extra={"request_id": "r1", "password": PASSWORD})
    finally:
        record_logger.removeHandler(handler)
        record_logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = orjson.loads(lines[0])
    assert entry["message"] == "failed" and entry["level"] == "ERROR" and entry["request_id"] == "r1"
    assert "ValueError: boom" in entry["exc_info"]
    assert "password" not in entry and PASSWORD not in lines[0]  # unknown extra fields are not written


@pytest.mark.parametrize(("url", "shown"), [
    ("http://rbacsvc:Hunter2SecretPw@127.0.0.1:8121/roles?api_key=TOPSECRETKEY", "http://***@127.0.0.1:8121/roles"),
    ("https://TOKEN@roles.example.org/v1#part", "https://***@roles.example.org/v1"),
    ("mysql://pet_api:p%40ss@db1:3307,db2:3307/pet_api?ssl=verify", "mysql://***@db1:3307,db2:3307/pet_api"),
    ("http://[::1]:8080/roles", "http://[::1]:8080/roles"),
    ("sqlite:///./pet_api.db", "sqlite:///./pet_api.db"),
    ("http://[::1/roles", "(a malformed URL)"),
])
def test_a_url_is_shown_without_credentials_or_query(url, shown):
    assert shown_url(url) == shown


def test_the_readmes_journal_queries_skip_the_plain_text_lines_of_a_failed_start():
    """The journal holds stderr too: a start that failed (exit 4, retried by the unit) and the warning about a
    misspelt variable are plain text, and `jq 'select(...)'` stopped at the first of them."""
    if shutil.which("jq") is None:
        pytest.skip("jq not installed")
    section = (ROOT / "README.md").read_text().split("### Start, status, logs", 1)[1].split("### ", 1)[0]
    filters = re.findall(r"^journalctl -u pet-api -o cat \| jq (.+)$", section, flags=re.M)
    assert len(filters) == 2, section
    failed = run_main("--env=prod", "--port", str(free_port()), PET_API_SECRET_KEY=secrets.token_urlsafe(40),
                      PET_API_DATABASE_URL=f"mysql://root@127.0.0.1:{free_port()}/nothing", PET_API_DATABSE_URL="x")
    assert failed.returncode == 4 and "pet-api: warning: PET_API_DATABSE_URL" in failed.stderr, failed.stderr
    server_error = '{"level":"INFO","logger":"pet_api.access","message":"request","status":503}'
    refused = '{"level":"WARNING","logger":"pet_api.security","event":"login","outcome":"refused"}'
    journal = "\n".join([*failed.stderr.splitlines(), '{"level":"INFO","status":200}', server_error, refused])
    selected = []
    for jq_filter in filters:
        result = subprocess.run(["bash", "-c", f"jq {jq_filter}"], input=journal + "\n", text=True,
                                capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr
        selected.append(result.stdout)
    assert selected == [server_error + "\n", refused + "\n"]

"""Secrets: a prod server logging at DEBUG (SQL echo on) through a representative session, hostile and broken
requests included (refresh and replay, e-mail verification, password reset over the dev outbox, export,
account deletion), writes no access, refresh, reset or verification token, password, hash or Authorization
header; its error bodies never carry a trace; prod refuses weak secrets."""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import migrated_database
from tests.processes import ROOT, ServerProcess, clean_env

STRONG_KEY = "Zq8#rT2!vL9@pX4$wK7%nB3^mF6&hJ1*"
PASSWORD, NEW_PASSWORD, WRONG_PASSWORD = "Secret-Pass-1234", "Other-Pass-5678", "Guess-Pass-9012"
RESET_PASSWORD = "Reset-Pass-3456"


@pytest.fixture(scope="module")
def prod_server(mysql_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("secrets")
    env = clean_env(PET_API_SECRET_KEY=STRONG_KEY, PET_API_DATABASE_URL=migrated_database(mysql_server_url, "secrets"),
                    PET_API_LOG_LEVEL="DEBUG", PET_API_SQL_ECHO="true",
                    PET_API_PLUGINS="core,accounts,pets,records,reminders,metrics,tests.handlers.boom_plugin",
                    PET_API_ACCOUNTS__MAIL_TRANSPORT="directory", PET_API_ACCOUNTS__OUTBOX_DIR=str(folder / "outbox"),
                    PET_API_ACCOUNTS__MAIL_POLL_SECONDS="0.1")
    with ServerProcess(folder / "server.log", env, profile="prod", args=("--host", "127.0.0.1")) as proc:
        proc.outbox = folder / "outbox"  # type: ignore[attr-defined]
        yield proc


def mailed_tokens(outbox: Path, count: int) -> list[str]:
    """The single-use tokens of the first `count` messages the server wrote to its outbox folder, oldest first."""
    deadline = time.monotonic() + 15
    while len(list(outbox.glob("*.eml"))) < count:
        assert time.monotonic() < deadline, "no mail"
        time.sleep(0.05)
    files = sorted(outbox.glob("*.eml"), key=lambda f: int(re.search(r"outbox-(\d+)", f.name).group(1)))
    texts = [message_from_bytes(f.read_bytes(), policy=policy.default).get_content() for f in files[:count]]
    return [re.findall(r"[A-Za-z0-9_-]{43,}", text)[-1] for text in texts]


def raw_request(server: ServerProcess, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(data)
        try:
            return sock.recv(65536)
        except ConnectionError:
            return b""


def representative_session(server: ServerProcess) -> tuple[list[str], list[tuple[int, Any]]]:
    """Requests a front end (and a careless or hostile client) makes; returns the secrets used and the errors."""
    call = server.request
    errors = []
    email = "secretive@example.com"
    assert call("POST", "/v1/users", json={"email": email, "password": PASSWORD, "nickname": "S"}).status == 201
    errors.append(call("POST", "/v1/users", json={"email": "x@example.com", "password": "short7!",
                                                  "nickname": "S"}).answer())
    errors.append(call("POST", "/v1/tokens", json={"account": email, "secret": WRONG_PASSWORD}).answer())
    status, body = call("POST", "/v1/tokens", json={"account": email, "secret": PASSWORD}).answer()
    assert status == 201
    token = body["data"]["token"]
    assert call("GET", "/v1/users/me", token=token).status == 200
    status, pet = call("POST", "/v1/pets", json={"name": "Logged", "species": "cat"}, token=token).answer()
    assert status == 201
    assert call("GET", "/v1/pets?limit=5&q=Log", token=token).status == 200
    assert call("PATCH", f"/v1/pets/{pet['data']['id']}", json={"status": "adopted"}, token=token,
                headers={"If-Match": '"v1"'}).status == 200
    errors.append(call("PATCH", f"/v1/pets/{pet['data']['id']}", json={"status": "pending"}, token=token,
                       headers={"If-Match": '"v1"'}).answer())
    assert call("POST", f"/v1/pets/{pet['data']['id']}/records", token=token,
                json={"kind": "vaccination", "date": "2024-01-01", "due_date": "2024-02-01"}).status == 201
    status, feed = call("POST", "/v1/users/me/calendar", token=token).answer()
    assert status == 201
    feed_url = feed["data"]["url"]
    feed_token = feed_url.removeprefix("/v1/calendar/").removesuffix(".ics")
    assert call("GET", feed_url).status == 200
    assert call("GET", feed_url, headers={"If-None-Match": '"nope"'}).status == 200
    errors.append(call("GET", f"/v1/calendar/{feed_token[::-1]}.ics").answer())  # unknown: 404
    errors.append(call("GET", "/v1/users/me", token=token[:-3] + "abc").answer())
    errors.append(call("GET", "/v1/users/me", headers={"Authorization": f"Basic {token}"}).answer())
    errors.append(call("GET", f"/v1/boom?access_token={token}", token=token).answer())  # a careless client
    errors.append(call("PATCH", "/v1/users/me", json={"password": NEW_PASSWORD, "current_password": WRONG_PASSWORD},
                       token=token).answer())
    assert call("PATCH", "/v1/users/me", json={"password": NEW_PASSWORD, "current_password": PASSWORD},
                token=token).status == 200
    errors.append(call("GET", "/v1/users/me", token=token).answer())  # revoked by the password change
    errors.append(call("GET", feed_url).answer())  # the feed too
    status, body = call("POST", "/v1/tokens", json={"account": email, "secret": NEW_PASSWORD}).answer()
    assert status == 201
    first_refresh = body["data"]["refresh_token"]
    status, body = call("POST", "/v1/tokens/refresh", json={"refresh_token": first_refresh}).answer()
    assert status == 201
    second, second_refresh = body["data"]["token"], body["data"]["refresh_token"]
    errors.append(call("POST", "/v1/tokens/refresh", json={"refresh_token": first_refresh}).answer())  # replayed
    status, body = call("POST", "/v1/tokens", json={"account": email, "secret": NEW_PASSWORD}).answer()
    second, second_refresh = body["data"]["token"], body["data"]["refresh_token"]
    assert call("POST", "/v1/password-resets", json={"email": email}).status == 202
    verify_token, reset_token = mailed_tokens(server.outbox, 2)  # type: ignore[attr-defined]
    assert call("POST", "/v1/email-verifications/confirm", json={"token": verify_token}).status == 200
    errors.append(call("POST", "/v1/password-resets/confirm", json={"token": reset_token, "password": "123456789"})
                  .answer())  # a common password, refused
    assert call("POST", "/v1/password-resets/confirm", json={"token": reset_token, "password": RESET_PASSWORD}
                ).status == 200
    errors.append(call("POST", "/v1/password-resets/confirm", json={"token": reset_token,
                                                                    "password": RESET_PASSWORD}).answer())  # reused
    status, body = call("POST", "/v1/tokens", json={"account": email, "secret": RESET_PASSWORD}).answer()
    assert status == 201
    second, second_refresh = body["data"]["token"], body["data"]["refresh_token"]
    status, body = call("POST", "/v1/tokens", json={"account": email, "secret": RESET_PASSWORD}).answer()
    status, body = call("POST", "/v1/tokens/refresh", json={"refresh_token": body["data"]["refresh_token"]}).answer()
    assert status == 201, body
    third, third_refresh = body["data"]["token"], body["data"]["refresh_token"]
    errors.append(call("POST", "/v1/pets", body=b'{"name": "x", "species": ' + second.encode(), token=second).answer())
    errors.append(call("POST", "/v1/pets", body=b"x" * (1_048_576 + 1), token=second).answer())
    errors.append(call("POST", "/v1/pets", body=b"<xml/>", token=second,
                       headers={"Content-Type": "application/xml"}).answer())
    errors.append(call("DELETE", "/v1/health", token=second).answer())
    errors.append(call("GET", "/v1/nope", token=second, headers={"Accept-Language": "zh-CN"}).answer())
    # Broken HTTP: a control character in the header, a header without a colon.
    raw_request(server, f"GET /v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {second}\x7f\r\n\r\n".encode())
    raw_request(server, f"GET /v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {second}\r\n\r\n".encode())
    assert call("DELETE", "/v1/tokens/current", token=second).status == 200
    errors.append(call("GET", "/v1/users/me", token=second).answer())
    errors.append(call("POST", "/v1/tokens/refresh", json={"refresh_token": second_refresh}).answer())  # logged out
    assert call("GET", "/v1/users/me/export", token=third).status == 200
    assert call("DELETE", "/v1/users/me", json={"password": RESET_PASSWORD}, token=third).status == 200
    return [token, second, third, PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, RESET_PASSWORD, "short7!", first_refresh,
            second_refresh, third_refresh, verify_token, reset_token, feed_token, feed_token[::-1],
            hashlib.sha256(feed_token.encode()).hexdigest()], errors


def test_logs_hold_no_token_password_or_authorization_header(prod_server: ServerProcess):
    secrets, errors = representative_session(prod_server)
    log = prod_server.output()
    lines = log.splitlines()
    assert len(lines) > 30 and any('"logger":"pet_api.access"' in line for line in lines), log[-2000:]
    # the security events of that session (logins, refreshes, the replay, the reset) are scanned too
    assert any('"logger":"pet_api.security"' in line and '"reason":"replayed"' in line for line in lines), log[-2000:]
    for secret in secrets:
        assert secret not in log, f"logged: {secret[:12]}..."
        assert orjson.dumps(secret).decode().strip('"') not in log
    for token in secrets[:3]:
        signature = token.rsplit(".", 1)[1]
        assert signature not in log, "a token's signature was logged"
    for needle in ("Authorization", "authorization", "Bearer", "$argon2"):
        assert needle not in log, [line for line in lines if needle in line][:3]
    print(f"\nsecrets: {len(lines)} log lines at DEBUG (SQL echo on) over {len(errors) + 25} requests: "
          f"0 access/refresh/reset/verification/feed tokens, 0 passwords, 0 Authorization headers")


def error_responses(server: ServerProcess) -> list[tuple[int, Any]]:
    """One answer of each error status, the unexpected 500 included."""
    call = server.request
    assert call("POST", "/v1/users", json={"email": "errors@example.com", "password": PASSWORD,
                                           "nickname": "E"}).status == 201
    token = call("POST", "/v1/tokens", json={"account": "errors@example.com",
                                             "secret": PASSWORD}).json()["data"]["token"]
    pet_id = call("POST", "/v1/pets", json={"name": "v", "species": "dog"}, token=token).json()["data"]["id"]
    return [
        call("GET", "/v1/boom", token=token).answer(),
        call("GET", "/v1/boom", headers={"Accept-Language": "zh-CN"}).answer(),
        call("GET", "/v1/nope").answer(),
        call("DELETE", "/v1/health").answer(),
        call("POST", "/v1/pets", body=b"{bad", token=token).answer(),
        call("POST", "/v1/pets", json={"name": "x", "species": "dog", "owner_id": 1}, token=token).answer(),
        call("GET", "/v1/pets/1", token=token + "x").answer(),
        call("GET", "/v1/pets/999999", token=token).answer(),
        call("POST", "/v1/pets", body=b"x" * (1_048_576 + 1), token=token).answer(),
        call("POST", "/v1/pets", body=b"<a/>", token=token, headers={"Content-Type": "application/xml"}).answer(),
        call("PATCH", f"/v1/pets/{pet_id}", json={"name": "y"}, token=token, headers={"If-Match": '"v9"'}).answer(),
    ]


def test_prod_error_bodies_never_carry_a_trace(prod_server: ServerProcess):
    errors = error_responses(prod_server)
    statuses = sorted({status for status, _ in errors})
    assert statuses == [400, 401, 404, 405, 412, 413, 415, 500], statuses
    for status, body in errors:
        assert body is not None and "trace" not in body, (status, body)
        assert set(body) <= {"error_code", "message", "request", "errors"}, body
        assert "Traceback" not in orjson.dumps(body).decode()
    boom = [body for status, body in errors if status == 500]
    assert boom == [{"error_code": 999, "message": "server error", "request": "GET /v1/boom"},
                    {"error_code": 999, "message": "服务器错误", "request": "GET /v1/boom"}], boom


WEAK_KEYS = ["", "short-key", "change-me-" + "x1y2z3" * 6, "a" * 48, "your-secret-goes-here-0123456789abcdef",
             f"{STRONG_KEY},weak"]


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_prod_refuses_a_weak_secret_key(key: str):
    env = {"PATH": "/usr/bin:/bin", "PET_API_SECRET_KEY": key, "PET_API_DATABASE_URL": "mysql://u@127.0.0.1:1/db"}
    done = subprocess.run([sys.executable, "main.py", "--env=prod", "routes"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "PET_API_SECRET_KEY" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert key not in done.stderr or not key


def test_prod_accepts_a_strong_secret_key():
    env = {"PATH": "/usr/bin:/bin", "PET_API_SECRET_KEY": STRONG_KEY, "PET_API_DATABASE_URL": "mysql://u@127.0.0.1:1/db"}
    done = subprocess.run([sys.executable, "main.py", "--env=prod", "routes"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "/v1/pets" in done.stdout

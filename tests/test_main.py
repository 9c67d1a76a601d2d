"""The command line, run as a user would: config errors, routes, migrate, create-admin, and prod start-up."""

import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pymysql
import pytest
from tornado.testing import bind_unused_port

from server.db.migrations import available
from tests.mariadb_server import create_database

ROOT = Path(__file__).resolve().parent.parent
SECRET = secrets.token_urlsafe(40)
FAST_HASH = {"PET_API_PASSWORD_HASH_TIME_COST": "1", "PET_API_PASSWORD_HASH_MEMORY_KIB": "8192"}
_names = itertools.count(1)
BOOM = "tests.handlers.boom_plugin"  # a test-only plugin whose route raises


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without PET_API_* variables, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PET_API_")}
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def run(*args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=clean_env(**env), text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def free_port() -> int:
    sock, port = bind_unused_port()
    sock.close()
    return port


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read()), error.headers


def new_database(server_url: str) -> str:
    return create_database(server_url, f"pet_api_cli_{os.getpid()}_{next(_names)}")


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# ---- configuration errors: one line naming the key, non-zero exit

def test_prod_without_a_secret_key_exits_with_one_line_naming_it():
    result = run("--env=prod", PET_API_SECRET_KEY="")
    assert result.returncode != 0
    assert "PET_API_SECRET_KEY" in one_line(result.stderr)
    assert result.stdout == ""


@pytest.mark.parametrize(("env", "key"), [
    ({"PET_API_PORT": "eighty"}, "PET_API_PORT"),
    ({"PET_API_SECRET_KEY": "changeme-changeme-changeme-changeme-1234"}, "PET_API_SECRET_KEY"),
    ({"PET_API_DEBUG": "true"}, "PET_API_DEBUG"),
    ({"PET_API_PLUGINS": "core,nope"}, "PET_API_PLUGINS"),
])
def test_a_malformed_prod_value_exits_with_one_line_naming_the_key(env, key):
    result = run("--env=prod", **{"PET_API_SECRET_KEY": SECRET, **env})
    assert result.returncode == 2
    assert key in one_line(result.stderr)
    assert "Traceback" not in result.stderr


def test_options_before_the_subcommand_are_kept():
    # argparse's subparser defaults used to reset --env to dev here: prod's checks must apply
    result = run("--env=prod", "migrate", PET_API_SECRET_KEY="")
    assert result.returncode == 2
    assert "PET_API_SECRET_KEY" in one_line(result.stderr)


# ---- routes

def test_routes_prints_method_path_plugin_and_scopes():
    result = run("routes", "--env=test")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["METHOD", "PATH", "PLUGIN", "SCOPES"]
    assert ["GET", "/v1/health", "core", "-"] in rows
    assert ["POST", "/v1/users", "accounts", "-"] in rows
    assert ["GET", "/v1/users", "accounts", "users:admin"] in rows
    assert ["PATCH", "/v1/users/me", "accounts", "users:me"] in rows
    assert ["DELETE", "/v1/tokens/current", "accounts", "(any", "token)"] in rows
    assert ["POST", "/v1/pets", "pets", "pets:write"] in rows


def test_routes_lists_only_the_plugins_in_the_profile():
    result = run("routes", "--env=test", PET_API_PLUGINS="core")
    assert result.returncode == 0, result.stderr
    plugins = {line.split()[2] for line in result.stdout.splitlines()[1:]}
    assert plugins == {"core"}


# ---- migrate, and prod refusing a schema that is behind

def test_prod_refuses_to_start_while_a_migration_is_pending(mysql_server_url):
    url = new_database(mysql_server_url)
    migrated = run("migrate", "--env=test", PET_API_DATABASE_URL=url)
    assert migrated.returncode == 0, migrated.stderr
    parts = url.rsplit("/", 1)
    conn = pymysql.connect(host="127.0.0.1", port=int(parts[0].rsplit(":", 1)[1]), user="root", database=parts[1],
                           autocommit=True)
    try:
        conn.cursor().execute("DELETE FROM schema_migrations WHERE version = 1")
    finally:
        conn.close()
    start = time.monotonic()
    result = run("--env=prod", "--port", str(free_port()), PET_API_SECRET_KEY=SECRET, PET_API_DATABASE_URL=url)
    assert time.monotonic() - start < 15
    assert result.returncode == 3
    line = one_line(result.stderr)
    assert "pending migrations 0001_initial" in line
    assert "python main.py migrate --env=prod" in line


def test_prod_with_the_database_unreachable_exits_with_one_line():
    url = f"mysql://root@127.0.0.1:{free_port()}/nothing"
    result = run("--env=prod", "--port", str(free_port()), PET_API_SECRET_KEY=SECRET, PET_API_DATABASE_URL=url)
    assert result.returncode == 4
    assert "database is unreachable" in one_line(result.stderr)


@pytest.mark.parametrize("command", [["migrate"], ["create-admin", "--email", "a@example.com"]])
def test_commands_with_the_database_unreachable_say_so_in_one_line(command):
    url = f"mysql://root:hunter2-secret@127.0.0.1:{free_port()}/nothing"
    result = run(*command, "--env=test", PET_API_DATABASE_URL=url, PET_API_ADMIN_PASSWORD="long-enough-password")
    assert result.returncode == 4
    line = one_line(result.stderr)
    assert "is unreachable" in line
    assert "hunter2-secret" not in line


# ---- a prod server on a database migrated from empty

class Server:
    def __init__(self, url: str, port: int, process: subprocess.Popen[str], log: Path) -> None:
        self.url, self.port, self.process, self.log = url, port, process, log
        self.base = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def prod_server(mysql_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = new_database(mysql_server_url)
    env = {"PET_API_SECRET_KEY": SECRET, "PET_API_DATABASE_URL": url, **FAST_HASH}
    first = run("--env=prod", "migrate", **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"applied {m.version:04d}_{m.name}" for m in available("mysql")]
    assert first.stdout.splitlines()[0] == "applied 0001_initial"
    again = run("migrate", "--env=prod", **env)
    assert again.stdout.strip() == "database is up to date"

    port, env_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("prod") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "main.py", "--env=prod", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
            env=clean_env(**env, PET_API_PORT=str(env_port), PET_API_PLUGINS=f"core,accounts,{BOOM}"),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, text=True)
    server = Server(url, port, process, log)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if http("GET", f"{server.base}/v1/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        server.env_port = env_port  # type: ignore[attr-defined]
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_prod_starts_after_migrate_and_the_flag_port_wins(prod_server):
    status, body, headers = http("GET", f"{prod_server.base}/v1/health")
    assert (status, body) == (200, {"code": 200, "data": {"status": "ok"}, "message": "ok"})
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert http("GET", f"{prod_server.base}/v1/health/ready")[:2] == (
        200, {"code": 200, "data": {"status": "ok"}, "message": "ok"})
    with pytest.raises(OSError):
        http("GET", f"http://127.0.0.1:{prod_server.env_port}/v1/health")  # PET_API_PORT lost to --port


def test_prod_errors_carry_no_trace(prod_server):
    assert http("GET", f"{prod_server.base}/v1/boom")[:2] == (
        500, {"error_code": 999, "message": "server error", "request": "GET /v1/boom"})
    assert http("GET", f"{prod_server.base}/v1/nope?q=1")[:2] == (
        404, {"error_code": 1007, "message": "no such route", "request": "GET /v1/nope"})
    assert http("DELETE", f"{prod_server.base}/v1/health")[:2] == (
        405, {"error_code": 1007, "message": "method not allowed", "request": "DELETE /v1/health"})


def test_create_admin_creates_and_promotes(prod_server):
    base, env = prod_server.base, {"PET_API_SECRET_KEY": SECRET, "PET_API_DATABASE_URL": prod_server.url, **FAST_HASH}
    email = f"owner{next(_names)}@example.com"
    assert http("POST", f"{base}/v1/users", {"email": email, "password": "first-password", "nickname": "o"})[0] == 201
    status, body, _ = http("POST", f"{base}/v1/tokens", {"account": email, "secret": "first-password"})
    assert status == 201
    user_token = body["data"]["token"]
    assert "users:admin" not in body["data"]["scopes"]

    promoted = run("create-admin", "--env=prod", "--email", email.upper(), PET_API_ADMIN_PASSWORD="admin-password",
                   **env)
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.startswith(f"promoted {email} (id ")
    status, body, _ = http("POST", f"{base}/v1/tokens", {"account": email, "secret": "admin-password"})
    assert status == 201
    assert "users:admin" in body["data"]["scopes"]
    status, body, _ = http("GET", f"{base}/v1/users", token=body["data"]["token"])
    assert status == 200
    assert body["page"]["total"] >= 1
    time.sleep(1)  # the server's revocation refresh (0.5 s in prod) picks up the new cut-off
    status, body, _ = http("GET", f"{base}/v1/users/me", token=user_token)
    assert (status, body["error_code"]) == (401, 10033)  # the new password revoked earlier tokens

    fresh = f"admin{next(_names)}@example.com"
    created = run("create-admin", "--env=prod", "--email", fresh, PET_API_ADMIN_PASSWORD="another-password", **env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"created admin {fresh} (id ")
    status, body, _ = http("POST", f"{base}/v1/tokens", {"account": fresh, "secret": "another-password"})
    assert status == 201
    assert {"users:admin", "pets:admin"} <= set(body["data"]["scopes"])


@pytest.mark.parametrize(("args", "env", "says"), [
    (["--email", "x@example.com"], {}, "PET_API_ADMIN_PASSWORD"),  # no variable, no terminal to ask on
    (["--email", "x@example.com"], {"PET_API_ADMIN_PASSWORD": "short"}, "password"),
    (["--email", "not-an-email"], {"PET_API_ADMIN_PASSWORD": "long-enough-password"}, "email"),
])
def test_create_admin_refuses_with_one_line(prod_server, args, env, says):
    result = run("create-admin", "--env=prod", *args, PET_API_SECRET_KEY=SECRET,
                 PET_API_DATABASE_URL=prod_server.url, **env)
    assert result.returncode == 2
    assert says in one_line(result.stderr)
    assert "Traceback" not in result.stderr


def test_the_access_log_holds_no_credentials(prod_server):
    secret_password = "pa55-" + secrets.token_hex(8)
    email = f"log{next(_names)}@example.com"
    http("POST", f"{prod_server.base}/v1/users", {"email": email, "password": secret_password, "nickname": "l"})
    status, body, _ = http("POST", f"{prod_server.base}/v1/tokens", {"account": email, "secret": secret_password})
    token = body["data"]["token"]
    assert http("GET", f"{prod_server.base}/v1/users/me", token=token)[0] == 200
    time.sleep(0.3)
    log = prod_server.log.read_text()
    assert '"path":"/v1/users/me"' in log.replace(" ", "")
    assert secret_password not in log
    assert token not in log
    assert token.rsplit(".", 1)[1] not in log


def test_dev_serves_accounts_on_embedded_sqlite_within_5_seconds(tmp_path):
    port = free_port()
    env = clean_env(PET_API_DATABASE_URL=f"sqlite:///{tmp_path}/dev.sqlite3", **FAST_HASH)
    with (tmp_path / "server.log").open("w") as out:
        process = subprocess.Popen([sys.executable, "main.py", "--env=dev", "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if http("GET", f"{base}/v1/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() - started < 5, (tmp_path / "server.log").read_text()
            time.sleep(0.05)
        status, body, _ = http("POST", f"{base}/v1/users", {"email": "dev@example.com", "password": "dev-password",
                                                             "nickname": "Dev"})
        assert status == 201, body
        status, token, _ = http("POST", f"{base}/v1/tokens", {"account": "dev@example.com", "secret": "dev-password"})
        assert status == 201, token
        status, me, _ = http("GET", f"{base}/v1/users/me", token=token["data"]["token"])
        assert status == 200
        assert me["data"] == body["data"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

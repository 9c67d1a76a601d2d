"""Schemathesis against a running server with its own API document: every operation, authenticated, all
checks, stateful phase included. Nothing may answer 5xx or contradict the document.

Configuration (written next to the run, see CONFIG) and why each piece is there:
- auth: a registered user, logged in through POST /v1/tokens; a 401 (a test revoked the token, e.g.
  DELETE /v1/tokens/current or a password change) logs in again and replays the request.
- positive_data_acceptance also accepts 412: a well-formed If-Match that names an older version is
  valid data refused because of the resource's state, like the 404 and 409 Schemathesis already allows.
- tests/api/schemathesis_hooks.py sends the real current password on PATCH /v1/users/me.
The server runs with generous login-throttling limits: the run makes thousands of failed logins.
Set PET_API_SCHEMATHESIS_SEED to explore other inputs (the default seed keeps CI reproducible) and
PET_API_SCHEMATHESIS_EXAMPLES to change the examples per operation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import migrated_database
from tests.processes import ROOT, ServerProcess, request, server_env

ACCOUNT = "schemathesis@example.com"
SECRET = "st-secret-passphrase-1"  # no word of the account (the context rule)
CONFIG = """\
[auth.dynamic.openapi.bearerAuth]
path = "/v1/tokens"
payload = { account = "${ST_ACCOUNT}", secret = "${ST_SECRET}" }
extract_selector = "/data/token"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]
"""
# the test profile's
PLUGINS = ("core", "accounts", "pets", "records", "households", "reminders", "photos", "sync", "metrics")
EVENT_STREAM = "/v1/events"
TIMEOUT = 240  # about 40 s here with 100 examples; a hung run fails instead of stalling CI


@pytest.fixture(scope="module", params=[PLUGINS, (*PLUGINS, "weight")], ids=["core", "with-weight"])
def server(request: pytest.FixtureRequest, mysql_server_url: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on a fresh migrated database, with login throttling out of the way, and one user; once with the
    test profile's plugins and once with the example external plugin (examples/pet-api-weight) too."""
    plugins = list(request.param)
    database = migrated_database(mysql_server_url, f"pet_api_schemathesis_{os.getpid()}_{len(plugins)}",
                                 plugins=plugins)
    log = tmp_path_factory.mktemp("schemathesis") / "server.log"
    env = server_env(database, PET_API_LOG_LEVEL="WARNING", PET_API_ACCESS_LOG="false",
                     PET_API_PLUGINS=",".join(plugins), PET_API_LOGIN_MAX_FAILURES="1000000",
                     PET_API_LOGIN_MAX_FAILURES_PER_ADDRESS="1000000")
    with ServerProcess(log, env) as process:
        created = process.request("POST", "/v1/users",
                                  json={"email": ACCOUNT, "password": SECRET, "nickname": "schemathesis"})
        assert created.status == 201, created.body
        yield process


@pytest.mark.slow
def test_schemathesis_finds_nothing(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    env = {**os.environ, "ST_ACCOUNT": ACCOUNT, "ST_SECRET": SECRET, "PYTHONPATH": str(ROOT),
           "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "NO_COLOR": "1"}
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"http://127.0.0.1:{server.port}/v1/openapi.json",
               "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
               "--max-examples", os.environ.get("PET_API_SCHEMATHESIS_EXAMPLES", "100"),
               "--seed", os.environ.get("PET_API_SCHEMATHESIS_SEED", "20251124"),
               "--generation-database", "none", "--request-timeout", "10", "--no-color",
               "--exclude-path", EVENT_STREAM]
    document = request(server.port, "GET", "/v1/openapi.json").json()
    # Every operation but GET /v1/openapi.json, which Schemathesis leaves out: it loaded the run from it, and the
    # event stream, which answers for as long as the client stays (tests/plugins/sync/test_events.py covers it).
    every = sum(len(methods) for methods in document["paths"].values()) - 1
    operations = every - (EVENT_STREAM in document["paths"])
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    assert f"Selected: {operations}/{every}" in output and f"Tested: {operations}" in output, output[-4000:]
    assert "Stateful" in output and "API Links" in output, output[-4000:]
    assert "Traceback" not in server.output()  # no unhandled exception, not even one answered as a 4xx

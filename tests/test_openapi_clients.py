"""The API document as real clients' tools read it (issue 19 item 7): two OpenAPI linters, Redocly CLI and
Spectral, find no error and nothing about the bearer scheme, its scopes or public operations; a Python client
generated from the served document by openapi-python-client registers, logs in, creates a pet, adds a record,
lists both and changes the password (PATCH /v1/users/me with current_password) against a running server.

The npm tools are installed from the npm registry into var/npm on first use (as the calendar test's ical.js);
openapi-python-client comes from the test extras."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.factories import serving
from tests.processes import ROOT

NPM_PREFIX = ROOT / "var" / "npm"  # a cache of the tests' own npm installs (var/ is not versioned)
LINTERS = {"redocly": "@redocly/cli@2.77.0", "spectral": "@stoplight/spectral-cli@6.16.3"}
# What neither linter may say, even as a warning: the complaints (public operations without
# `security: []`, scopes on a bearer scheme, a required property the schema does not define).
SECURITY_RULES = {"security-defined", "oas3-operation-security-defined", "operation-security-defined",
                  "no-required-schema-properties-undefined", "oas3-schema", "oas3-valid-schema-example"}


@pytest.fixture(scope="session")
def npm_bin() -> Path:
    """var/npm/node_modules/.bin with both linters installed."""
    bin_dir = NPM_PREFIX / "node_modules" / ".bin"
    if not all((bin_dir / name).is_file() for name in LINTERS):
        assert shutil.which("npm") and shutil.which("node"), "the linting test needs node and npm"
        subprocess.run(["npm", "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", *LINTERS.values()],
                       check=True, capture_output=True, timeout=600)
    return bin_dir


async def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A command run off the event loop (the test's server answers meanwhile)."""
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, **kwargs)


async def served_document(api: Any, tmp_path: Path) -> Path:
    response = await api.get("/v1/openapi.json")
    assert response.status == 200, response.body
    path = tmp_path / "openapi.json"
    path.write_bytes(orjson.dumps(response.body))
    return path


@pytest.mark.gen_test(timeout=300)
async def test_redocly_and_spectral_find_no_error_in_the_document(api, tmp_path, npm_bin):
    document = await served_document(api, tmp_path)
    redocly = await run([str(npm_bin / "redocly"), "lint", str(document), "--format=json"], cwd=tmp_path,
                        timeout=180)
    report = json.loads(redocly.stdout)
    problems = [(p["ruleId"], p["severity"], p["message"]) for p in report["problems"]]
    assert report["totals"]["errors"] == 0, problems
    assert [p for p in problems if p[0] in SECURITY_RULES] == []
    print("redocly warnings:", sorted({p[0] for p in problems}))

    (tmp_path / ".spectral.yaml").write_text('extends: ["spectral:oas"]\n')
    spectral = await run([str(npm_bin / "spectral"), "lint", str(document), "--format=json",
                          "--ruleset", str(tmp_path / ".spectral.yaml"), "--quiet"], cwd=tmp_path, timeout=180)
    found = json.loads(spectral.stdout or "[]")
    problems = [(p["code"], p["severity"], p["message"], p["path"]) for p in found]
    assert [p for p in problems if p[1] == 0] == [], problems  # severity 0: error
    assert [p for p in problems if p[0] in SECURITY_RULES or p[0] == "operation-description"] == [], problems
    print("spectral warnings:", sorted({p[0] for p in problems}))  # info-contact: the owner's to give


@pytest.mark.gen_test(timeout=300)
async def test_a_generated_python_client_drives_the_api(app, api, tmp_path, monkeypatch, caplog):
    for name in ("httpx", "httpcore"):  # their debug lines would carry the request's headers into the logs
        caplog.set_level(logging.WARNING, logger=name)
    document = await served_document(api, tmp_path)
    generated = await run([sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document),
                           "--output-path", str(tmp_path / "petclient"), "--meta", "none"], timeout=240)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    client_module = importlib.import_module("petclient.client")
    models = importlib.import_module("petclient.models")

    def call(module: str) -> Any:
        return importlib.import_module(f"petclient.api.{module}").asyncio_detailed

    async with serving(app) as base_url:
        public = client_module.Client(base_url=base_url, raise_on_unexpected_status=True)
        created = await call("accounts.post_v1_users")(client=public, body=models.UserCreate(
            email="generated@example.com", password="first-secret-7", nickname="Gen"))
        assert created.status_code == 201, created.content
        assert created.parsed.data.email == "generated@example.com"

        async def login(secret: str) -> Any:
            return await call("accounts.post_v1_tokens")(client=public, body=models.TokenCreate(
                account="generated@example.com", secret=secret))

        token = (await login("first-secret-7")).parsed.data.token
        client = client_module.AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)

        # sex and status left out: optional in the generated model, the server's defaults apply
        pet = await call("pets.post_v1_pets")(client=client, body=models.PetCreate(
            name="Émile", species=models.PetCreateSpecies.DOG, birth_date=dt.date(2020, 5, 1)))
        assert pet.status_code == 201, pet.content
        assert (pet.parsed.data.name, pet.parsed.data.sex, pet.parsed.data.status) == ("Émile", "unknown", "available")
        pet_id = pet.parsed.data.id

        record = await call("records.post_v1_pets_pet_id_records")(pet_id, client=client, body=models.RecordCreate(
            kind=models.RecordCreateKind.WEIGHT, date=dt.date(2026, 1, 2), value=12.5))
        assert record.status_code == 201, record.content
        assert (record.parsed.data.value, record.parsed.data.date) == (12.5, dt.date(2026, 1, 2))

        pets = await call("pets.get_v1_pets")(client=client, sort=models.GetV1PetsSort.NAME)
        assert pets.status_code == 200 and [p.name for p in pets.parsed.data] == ["Émile"]
        assert pets.parsed.page.total == 1
        records = await call("records.get_v1_pets_pet_id_records")(pet_id, client=client)
        assert records.status_code == 200 and [r.id for r in records.parsed.data] == [record.parsed.data.id]

        # PATCH /v1/users/me: current_password is a field of the generated model (it was dropped before)
        assert "current_password" in models.MeUpdate.__annotations__
        changed = await call("accounts.patch_v1_users_me")(client=client, body=models.MeUpdate(
            password="second-secret-8", current_password="first-secret-7"))
        assert changed.status_code == 200, changed.content
        assert (await login("second-secret-8")).status_code == 201
        refused = await login("first-secret-7")
        assert refused.status_code == 401 and refused.parsed.error_code == 1003

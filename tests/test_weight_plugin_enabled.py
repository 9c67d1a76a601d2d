"""The core's contract tests again with the example external plugin enabled (examples/pet-api-weight, installed
by scripts/test.sh and found through its entry point), and what disappears when it is not enabled."""

import subprocess
import sys
from typing import Any

import pytest

from server.db import connect
from tests.conftest import migrated_database, run_async
from tests.conftest import test_config as profile_config  # under a test_ name pytest would collect it
from tests.mariadb_server import create_database
from tests.plugins.core.handlers.test_docs import (  # noqa: F401 - collected again here, with the plugin enabled
    test_headless_chromium_renders_every_operation_offline,
)
from tests.processes import ROOT, clean_env
from tests.test_openapi import (  # noqa: F401 - collected again here, with the plugin enabled
    test_a_get_answers_304_to_its_own_etag_exactly_where_the_document_declares_it,
    test_each_documented_error_status_lists_the_codes_the_catalog_gives_that_status,
    test_each_operation_describes_parameters_body_success_and_errors,
    test_schemas_use_only_json_schema_keywords,
    test_the_document_is_valid_openapi_3_1,
    test_the_document_lists_every_route_of_the_cli_with_its_scopes,
)

PLUGINS = ("core", "accounts", "pets", "records", "photos", "metrics", "weight")
WEIGHT_ROUTES = {("GET", "/v1/pets/{pet_id}/weight", "pets:read"), ("GET", "/v1/pets/{pet_id}/weight.svg", "pets:read"),
                 ("GET", "/v1/pets/{pet_id}/weight/target", "pets:read"),
                 ("PUT", "/v1/pets/{pet_id}/weight/target", "pets:write"),
                 ("DELETE", "/v1/pets/{pet_id}/weight/target", "pets:write")}


@pytest.fixture(scope="module")
def mysql_url(mysql_server_url: str) -> str:
    """A database migrated with the plugin enabled (its weight_targets table)."""
    return migrated_database(mysql_server_url, "pet_api_weight_enabled", plugins=list(PLUGINS))


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"plugins": list(PLUGINS)}


@pytest.fixture(autouse=True)
def weight_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `main.py routes` that test_the_document_lists_every_route_of_the_cli_with_its_scopes runs sees it too."""
    monkeypatch.setenv("PET_API_PLUGINS", ",".join(PLUGINS))


def main(*args: str, **env: str) -> list[list[str]]:
    result = subprocess.run([sys.executable, "main.py", *args, "--env=test"], cwd=ROOT, env=clean_env(**env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.splitlines() if line.strip()]


def test_routes_lists_the_plugins_routes_with_their_scopes_only_when_enabled():
    enabled = {(row[0], row[1], row[3]) for row in main("routes", PET_API_PLUGINS=",".join(PLUGINS))
               if row[2] == "weight"}
    assert enabled == WEIGHT_ROUTES
    default = main("routes")
    assert [row for row in default if "weight" in " ".join(row)] == []
    assert ["POST", "/v1/pets", "pets", "pets:write"] in default


async def tables_and_ledger(url: str) -> tuple[set[str], set[tuple[str, int]]]:
    db = await connect(profile_config(database_url=url))
    try:
        tables = {str(row[0]) for row in await db.fetch_all(db.dialect.tables)}
        ledger = {(str(row[0]), int(str(row[1]))) for row in await db.fetch_all(
            "SELECT plugin, version FROM schema_migrations")}
        return tables, ledger
    finally:
        await db.close()


@pytest.mark.parametrize("backend", ["mysql", "sqlite"])
def test_migrate_creates_its_table_only_when_enabled_and_disabling_keeps_it(backend, request, tmp_path):
    url = (create_database(request.getfixturevalue("mysql_server_url"), "pet_api_weight_migrate")
           if backend == "mysql" else f"sqlite:///{tmp_path}/weight.sqlite3")
    without = main("migrate", PET_API_DATABASE_URL=url)
    tables, ledger = run_async(tables_and_ledger(url))
    assert "weight_targets" not in tables and not any(plugin == "weight" for plugin, _ in ledger), without
    main("migrate", PET_API_DATABASE_URL=url, PET_API_PLUGINS=",".join(PLUGINS))
    tables, ledger = run_async(tables_and_ledger(url))
    assert "weight_targets" in tables and ("weight", 1) in ledger and ("pets", 1) in ledger
    main("migrate", PET_API_DATABASE_URL=url)  # disabled again: its table and its row stay
    assert run_async(tables_and_ledger(url)) == (tables, ledger)


def plugin_block(rows: list[list[str]], name: str) -> list[str]:
    """The lines `main.py plugins` prints about one plugin (words joined by single spaces): from its
    'name [enabled|disabled] origin' line to the next plugin's."""
    heads = [i for i, row in enumerate(rows) if len(row) > 1 and row[1] in ("[enabled]", "[disabled]")]
    start = next(i for i in heads if rows[i][0] == name)
    end = next((i for i in heads if i > start), len(rows))
    return [" ".join(row) for row in rows[start:end]]


def test_plugins_shows_where_it_comes_from_its_settings_errors_and_migration_state(tmp_path):
    url = f"sqlite:///{tmp_path}/plugins.sqlite3"
    main("migrate", PET_API_DATABASE_URL=url)
    enabled = plugin_block(main("plugins", PET_API_DATABASE_URL=url, PET_API_PLUGINS=",".join(PLUGINS)), "weight")
    assert enabled[0] == "weight [enabled] entry point pet-api-weight 0.1.0"
    assert "default_unit = 'kg' [PET_API_WEIGHT__DEFAULT_UNIT]" in enabled
    assert "errors: 2101 (reserves 2100-2199)" in enabled
    assert "requires: pets, records" in enabled and "scopes: pets:read, pets:write" in enabled
    assert enabled[-1] == "migrations: 0 applied, 1 pending (0001_weight_targets)"
    main("migrate", PET_API_DATABASE_URL=url, PET_API_PLUGINS=",".join(PLUGINS))
    disabled = plugin_block(main("plugins", PET_API_DATABASE_URL=url), "weight")
    assert disabled[0] == "weight [disabled] entry point pet-api-weight 0.1.0"
    assert disabled[-1] == "migrations: 1 applied, 0 pending"


def test_prod_refuses_to_start_while_its_migration_is_pending(tmp_path):
    url = f"sqlite:///{tmp_path}/prod.sqlite3"
    main("migrate", PET_API_DATABASE_URL=url)
    result = subprocess.run([sys.executable, "main.py", "--env=prod"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env=clean_env(PET_API_DATABASE_URL=url, PET_API_PLUGINS=",".join(PLUGINS),
                                                      PET_API_SECRET_KEY="k" * 20 + "-weight-plugin-test-key"))
    assert result.returncode == 3, result.stderr
    assert "weight 0001_weight_targets" in result.stderr, result.stderr


@pytest.mark.gen_test
async def test_its_error_code_and_routes_are_served_when_enabled(api):
    catalog = (await api.get("/v1/errors")).body["data"]
    assert {"error_code": 2101, "http_status": 409, "message": "weight unit mismatch"} in catalog
    paths = (await api.get("/v1/openapi.json")).body["paths"]
    assert {path for path in paths if "weight" in path} == {path for _, path, _ in WEIGHT_ROUTES}


class TestWithoutThePlugin:
    """Installed but not in the profile: nothing of it is mounted, documented or catalogued."""

    @pytest.fixture
    def config_overrides(self) -> dict[str, Any]:
        return {"plugins": list(PLUGINS[:-1])}

    @pytest.mark.gen_test
    async def test_none_of_it_is_served(self, api, app):
        catalog = (await api.get("/v1/errors")).body["data"]
        assert [entry for entry in catalog if 2100 <= entry["error_code"] < 2200] == []
        document = (await api.get("/v1/openapi.json")).body
        assert [path for path in document["paths"] if "weight" in path] == []
        assert "weight" not in [tag["name"] for tag in document["tags"]]
        response = await api.get("/v1/pets/1/weight")
        assert (response.status, response.body["error_code"]) == (404, 1007)

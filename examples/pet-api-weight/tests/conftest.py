"""The project's fixtures (tests/conftest.py, tests/factories.py) with the weight plugin enabled.

Run from a pet-api checkout: `python3 -m pytest examples/pet-api-weight/tests` (its tests/ package supplies
the fixtures: a real MariaDB and the embedded SQLite)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import api, app, backend, config, http_server, migrated_database  # noqa: F401 - fixtures

pytest_plugins = ["tests.mariadb_server", "tests.secrets_watch"]
PLUGINS = ("core", "accounts", "pets", "records", "metrics", "weight")


@pytest.fixture(scope="session")
def mysql_url(mysql_server_url: str) -> str:
    """A database of this package's tests, migrated with the weight plugin enabled."""
    return migrated_database(mysql_server_url, "pet_api_weight_plugin", plugins=PLUGINS)


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"plugins": list(PLUGINS)}

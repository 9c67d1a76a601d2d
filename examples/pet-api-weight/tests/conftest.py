"""The project's fixtures (tests/conftest.py, tests/factories.py) with the weight plugin enabled.

Run from a pet-api checkout: `python3 -m pytest examples/pet-api-weight/tests` (its tests/ package supplies
the fixtures: a real MariaDB and the embedded SQLite)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

pytest_plugins = ["tests.mariadb_server", "tests.secrets_watch"]
# Imported below, before pytest loads them as plugins (in a run of the whole suite they are imported already).
pytest.register_assert_rewrite(*(name for name in pytest_plugins if name not in sys.modules))

from tests.conftest import api, app, backend, config, http_server, migrated_database  # noqa: E402, F401 - fixtures

PLUGINS = ("core", "accounts", "pets", "records", "metrics", "weight")


@pytest.fixture(scope="session")
def mysql_url(mysql_server_url: str) -> str:
    """A database of this package's tests, migrated with the weight plugin enabled."""
    return migrated_database(mysql_server_url, "pet_api_weight_plugin", plugins=list(PLUGINS))


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"plugins": list(PLUGINS)}

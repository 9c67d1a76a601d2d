"""Finding plugins by entry point (a real installed distribution on sys.path), short name and dotted path, and
`main.py plugins` listing what can be enabled."""

import itertools
import sys
from pathlib import Path

import pytest

from server.plugins import ENTRY_POINT_GROUP, Plugin, PluginError, discoverable, find_plugin
from tests.processes import run_main

_serial = itertools.count(1)
PLUGIN_SOURCE = '''
from pydantic import BaseModel

from server.declare import operation
from server.handlers.base import BaseHandler
from server.plugins import Plugin, Route


class DemoSettings(BaseModel):
    greeting: str = "hello"


class DemoHandler(BaseHandler):
    @operation(summary="A greeting from an installed plugin")
    async def get(self) -> None:
        self.send({"greeting": self.application.plugin_settings["demo"].greeting})


PLUGIN = Plugin(name="{name}", routes=[Route("/v1/demo", DemoHandler)], settings=DemoSettings,
                scopes={"demo:read": "read the demo"})
'''
MIGRATION = {"mysql": "CREATE TABLE demo_notes (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, text VARCHAR(50));\n",
             "sqlite": "CREATE TABLE demo_notes (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT);\n"}


def install_distribution(root: Path, *, advertised: str = "demo", name: str = "demo", attr: bool = True) -> str:
    """A distribution 'pet-api-demo' 1.2.3 installed in root (a package with migrations, and a dist-info whose
    entry_points.txt advertises it in pet_api.plugins), as pip would lay it out; returns the package name."""
    package = f"demo_plugin_{next(_serial)}"
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text(PLUGIN_SOURCE.replace("{name}", name))
    for dialect, sql in MIGRATION.items():
        (root / package / "migrations" / dialect).mkdir(parents=True)
        (root / package / "migrations" / dialect / "0001_demo.sql").write_text(sql)
    info = root / "pet_api_demo-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pet-api-demo\nVersion: 1.2.3\n")
    target = f"{package}:PLUGIN" if attr else package
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{advertised} = {target}\n")
    return package


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install the demo distribution on sys.path for this test; its modules are forgotten afterwards."""
    def install(**kw):
        root = tmp_path / f"site{next(_serial)}"
        package = install_distribution(root, **kw)
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.setitem(sys.modules, package, None)  # so teardown removes it
        del sys.modules[package]
        return root, package
    return install


def test_an_entry_point_is_found_with_its_distribution_version_and_migrations(installed):
    root, package = installed()
    found = find_plugin("demo")
    assert (found.source, found.name, found.module) == ("entry point", "demo", package)
    assert found.origin == "entry point pet-api-demo 1.2.3"
    assert found.migrations == root / package / "migrations"  # <package>/migrations by default
    assert [r.path for r in found.plugin.routes] == ["/v1/demo"]


def test_an_entry_point_naming_a_module_and_one_shadowing_a_built_in(installed):
    _, package = installed(advertised="records", name="records", attr=False)  # value "module": its PLUGIN
    found = find_plugin("records")
    assert (found.source, found.module) == ("entry point", package)  # entry points come first


def test_a_short_name_is_a_built_in_and_a_dotted_path_a_module():
    pets = find_plugin("pets")
    assert (pets.source, pets.module, pets.origin) == ("built in", "server.plugins.pets", "built in")
    assert pets.migrations == Path(__file__).resolve().parents[2] / "server" / "plugins" / "pets" / "migrations"
    boom = find_plugin("tests.handlers.boom_plugin")
    assert (boom.source, boom.name, boom.origin) == ("path", "boom", "path tests.handlers.boom_plugin")
    assert boom.migrations is None
    with pytest.raises(PluginError) as caught:
        find_plugin("tests.handlers")
    assert str(caught.value) == "plugin 'tests.handlers': tests.handlers has no PLUGIN = Plugin(...)"


def test_a_plugins_missing_dependency_is_named_even_when_its_name_starts_the_plugins(tmp_path, monkeypatch):
    (tmp_path / "collar_engine_plugin.py").write_text("import collar_engine  # not installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as caught:
        find_plugin("collar_engine_plugin")
    assert str(caught.value) == ("plugin 'collar_engine_plugin': cannot import collar_engine_plugin: "
                                 "ModuleNotFoundError: No module named 'collar_engine'")
    with pytest.raises(PluginError) as caught:
        find_plugin("tests.plugins.samples.absent")
    assert str(caught.value) == "plugin 'tests.plugins.samples.absent': no module 'tests.plugins.samples.absent'"


def test_a_star_import_gives_the_plugin_api():
    names: dict[str, object] = {}
    exec("from server.plugins import *", names)  # noqa: S102 - what a plugin author may write
    assert {"Plugin", "Route", "Hook", "Exporter", "AfterMigrate", "PluginError", "find_plugin"} <= names.keys()
    assert names["Plugin"] is Plugin


def test_discoverable_lists_built_ins_entry_points_and_enabled_paths(installed):
    installed()
    found, broken = discoverable(("core", "tests.handlers.boom_plugin", "tests.plugins.samples.broken"))
    names = {f.name: f.source for f in found}
    assert {"core": "built in", "accounts": "built in", "pets": "built in", "records": "built in",
            "metrics": "built in", "demo": "entry point", "boom": "path"}.items() <= names.items()
    assert "tests.plugins.samples.broken" in broken and "boom" not in broken
    assert "RuntimeError: this plugin is broken on purpose" in broken["tests.plugins.samples.broken"]


def _section(output: str, name: str) -> list[str]:
    """The lines `main.py plugins` prints for one plugin: its header and the indented ones under it."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}  ["))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return lines[start:end]


def test_the_plugins_command_shows_an_installed_plugin_and_its_migration_state(tmp_path, database):
    root = tmp_path / "site"
    install_distribution(root)
    env = {"PYTHONPATH": str(root), "PET_API_DATABASE_URL": database,
           "PET_API_PLUGINS": "core,accounts,pets,demo"}
    before = run_main("plugins", "--env=test", **env)
    assert before.returncode == 0, before.stderr
    assert _section(before.stdout, "demo") == [
        "demo  [enabled]  entry point pet-api-demo 1.2.3",
        "  version:    1.2.3",
        "  routes:     GET /v1/demo",
        "  requires:   -",
        "  scopes:     demo:read",
        "  settings:",
        "    greeting = 'hello'  [PET_API_DEMO__GREETING]",
        "  errors:     -",
        "  after migrate: -",
        "  migrations: 0 applied, 1 pending (0001_demo)",
    ]
    assert _section(before.stdout, "core")[-1] == "  migrations: 3 applied, 0 pending"
    assert "  after migrate: server.plugins.accounts:_after_migrate" in _section(before.stdout, "accounts")
    records = _section(before.stdout, "records")
    assert records[0] == "records  [disabled]  built in"
    assert records[-1] == "  migrations: 4 applied, 0 pending"  # the module's database has them

    migrated = run_main("migrate", "--env=test", **env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.splitlines() == ["applied demo 0001_demo"]
    after = run_main("plugins", "--env=test", **env)
    assert _section(after.stdout, "demo")[-1] == "  migrations: 1 applied, 0 pending"
    routes = run_main("routes", "--env=test", **env)
    assert ["GET", "/v1/demo", "demo", "-"] in [line.split() for line in routes.stdout.splitlines()]
    assert ["demo:read", "demo", "read", "the", "demo"] in [line.split() for line in routes.stdout.splitlines()]


def test_the_plugins_command_without_a_database_says_so_and_exits_0(tmp_path):
    result = run_main("plugins", "--env=test", PET_API_DATABASE_URL="mysql://root@127.0.0.1:1/nothing")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    said = "  migrations: database unreachable: cannot connect (connection refused"
    assert _section(result.stdout, "pets")[-1].startswith(said), _section(result.stdout, "pets")
    assert _section(result.stdout, "core")[-1].startswith(said)
    assert _section(result.stdout, "metrics")[-1] == "  migrations: -"  # ships none

"""The enabled plugins, checked once: misconfigurations stop the start with one line naming the plugin; settings
from the profile and the environment reach handlers; the error catalog, the document and the role map's scopes
follow the enabled plugins."""

import logging
import re

import pytest
import yaml

from server import make_app, registry
from server.config import Config, ConfigError, load_config
from server.plugins import discoverable
from server.registry import load_plugins, settings_variable
from tests.conftest import test_config as profile_config
from tests.factories import assert_error, token_for, user_with_token
from tests.processes import ROOT, one_line, run_main

SAMPLES = "tests.plugins.samples"
TUNED = f"{SAMPLES}.tuned"


@pytest.mark.parametrize(("plugins", "env", "says"), [
    ("core,nope", {}, "config error: PET_API_PLUGINS (plugins): plugin 'nope': unknown (no entry point 'nope' in "
                      "pet_api.plugins, no module server.plugins.nope)"),
    (f"core,{SAMPLES}.broken", {}, f"config error: PET_API_PLUGINS (plugins): plugin '{SAMPLES}.broken': cannot "
                                   f"import {SAMPLES}.broken: RuntimeError: this plugin is broken on purpose"),
    ("core,accounts,records", {}, "config error: PET_API_PLUGINS (plugins): plugin 'records' requires 'pets', which "
                                  "is not enabled"),
    (f"core,accounts,pets,{SAMPLES}.requires_a,{SAMPLES}.requires_b", {},
     "config error: PET_API_PLUGINS (plugins): plugin 'requires_a' requires itself: 'requires_a' -> 'requires_b' "
     "-> 'requires_a'"),
    (f"core,{SAMPLES}.requires_self", {},
     "config error: PET_API_PLUGINS (plugins): plugin 'requires_self' requires itself: 'requires_self' -> "
     "'requires_self'"),
    (f"core,{TUNED}", {"PET_API_TUNED__LIMIT": "zero"},
     "config error: PET_API_TUNED__LIMIT (plugin_settings.tuned.limit): Input should be a valid integer, unable to "
     "parse string as an integer"),
    (f"core,{TUNED}", {"PET_API_TUNED__LIMIT": "0"},
     "config error: PET_API_TUNED__LIMIT (plugin_settings.tuned.limit): Input should be greater than or equal to 1"),
    ("core,accounts", {"PET_API_ACCOUNTS__MAIL_TRANSPORT": "smtp"},  # a check of two keys names the one to set
     "config error: PET_API_ACCOUNTS__SMTP_URL (plugin_settings.accounts.smtp_url): required when mail_transport is "
     "smtp"),
    (f"core,{TUNED},{SAMPLES}.codes_same", {},
     "config error: plugin 'codes_same': error code 2101 (SameCode) is also claimed by plugin 'tuned'"),
    (f"core,{TUNED},{SAMPLES}.codes_overlap", {},
     "config error: plugin 'codes_overlap': its error codes 2150-2249 overlap 2100-2199 of plugin 'tuned'"),
    (f"core,{SAMPLES}.codes_outside", {},
     "config error: plugin 'codes_outside': error code 2500 (Clash) is outside its range 2300-2399"),
    (f"core,{SAMPLES}.codes_core", {},
     "config error: plugin 'codes_core': its error codes 1000-1099 include the core's 1001"),
    (f"{SAMPLES}.route_core,core", {},
     "config error: plugins 'route_core' and 'core' both mount route /v1/health"),
    (f"core,accounts,pets,{SAMPLES}.route_shadow", {},
     "config error: plugins 'pets' and 'route_shadow' both mount route /v1/pets/{pet_id} ('route_shadow' as "
     "/v1/pets/{id})"),
    (f"core,{SAMPLES}.errors_not_api", {},
     "config error: plugin 'errors_not_api': its errors entry NotAnError is not an APIError subclass"),
    (f"core,{SAMPLES}.errors_status", {},
     "config error: plugin 'errors_status': error code 2801 (Fine) has status 200, not a 4xx or 5xx"),
])
def test_a_misconfigured_plugin_stops_the_start_with_one_line_naming_it(plugins, env, says):
    result = run_main("--env=test", PET_API_PLUGINS=plugins, **env)
    assert result.returncode == 2  # as for a core configuration error
    assert one_line(result.stderr) == says
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["migrate", "plugins"])
def test_a_plugin_migration_that_migrate_would_skip_stops_the_start_with_one_line(tmp_path, command):
    package = tmp_path / "skipped_plugin"
    for path in ("mysql/0001_audit.sql", "sqlite/0001_audit.sql", "sqlite/0002_AddNote.sql"):
        (package / "migrations" / path).parent.mkdir(parents=True, exist_ok=True)
        (package / "migrations" / path).write_text("ALTER TABLE pet_audit ADD COLUMN note TEXT;\n")
    (package / "__init__.py").write_text("from server.plugins import Plugin\n"
                                         "PLUGIN = Plugin(name='skipped', routes=[])\n")
    result = run_main(command, "--env=test", PYTHONPATH=str(tmp_path), PET_API_PLUGINS="core,skipped_plugin",
                      PET_API_DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        f"config error: plugin 'skipped': migrations: {package}/migrations/sqlite/0002_AddNote.sql is not named "
        "NNNN_name.sql (four digits, an underscore, then lower-case letters, digits and underscores)")
    assert result.stdout == ""


def test_settings_come_from_the_profile_and_the_environment_wins(tmp_path):
    profile = yaml.safe_load((load_config.__globals__["CONFIG_DIR"] / "test.yaml").read_text())
    profile.update(plugins=["core", TUNED], plugin_settings={"tuned": {"limit": 7, "label": "from the profile"}})
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(profile))
    from_profile = load_config("test", environ={}, config_dir=tmp_path)
    assert load_plugins(from_profile).settings["tuned"].model_dump() == {"limit": 7, "label": "from the profile"}
    both = load_config("test", environ={"PET_API_TUNED__LABEL": "from the environment"}, config_dir=tmp_path)
    assert load_plugins(both).settings["tuned"].model_dump() == {"limit": 7, "label": "from the environment"}
    defaults = profile_config(plugins=["core", TUNED])
    assert load_plugins(defaults).settings["tuned"].model_dump() == {"limit": 5, "label": "plain"}
    with pytest.raises(ConfigError) as caught:
        load_config("test", environ={"PET_API_TUNED__LIMIT": "-1"}, config_dir=tmp_path)
    assert str(caught.value).startswith("config error: PET_API_TUNED__LIMIT (plugin_settings.tuned.limit): ")


def test_a_check_of_two_settings_in_the_profile_names_the_key_it_is_about():
    # A model-level check has no field in its error: it read PET_API_ACCOUNTS__? (plugin_settings.accounts.?)
    # (audit config F4); it names the key its message starts with, as the core's checks do.
    with pytest.raises(ConfigError) as caught:
        load_config("test", environ={}, overrides={"plugin_settings": {"accounts": {"mail_transport": "smtp"}}})
    assert str(caught.value) == ("config error: PET_API_ACCOUNTS__SMTP_URL (plugin_settings.accounts.smtp_url): "
                                 "required when mail_transport is smtp")


def test_plugins_load_once_per_config(monkeypatch):
    scans = []
    scan = registry.entry_points
    monkeypatch.setattr(registry, "entry_points", lambda: scans.append(1) or scan())
    config = profile_config(plugins=["core", TUNED])  # load_config checks the plugins: the first load
    app = make_app(config)
    assert (len(scans), app.plugin_set) == (1, load_plugins(config))
    assert load_plugins(config) is app.plugin_set is make_app(config).plugin_set
    assert app.plugin_set.settings["tuned"].model_dump() == {"limit": 5, "label": "plain"}
    other = profile_config(plugins=["core", TUNED], plugin_settings={"tuned": {"limit": 9}})  # its own set
    assert len(scans) == 2
    assert load_plugins(other).settings["tuned"].model_dump() == {"limit": 9, "label": "plain"}


def test_a_key_an_enabled_plugin_does_not_have_is_a_warning_for_every_plugin():
    # accounts and photos (models forbidding extras) and pets (no settings) stopped the start with exit 2, households
    # and sync warned: README says a key its plugin does not have is warned of and ignored (audit config F8).
    misspelt = {"PET_API_ACCOUNTS__MAIL_FORM": "x", "PET_API_PHOTOS__PHOTO_MAX_BYTE": "5000",
                "PET_API_HOUSEHOLDS__INVITATION_TTL": "5", "PET_API_SYNC__RETENTION_DAYS": "3",
                "PET_API_PETS__PAGE_SIZE": "5"}
    config = load_config("test", environ=misspelt)
    assert config.plugin_settings["accounts"]["mail_form"] == "x"  # as given; the model leaves it out
    assert load_plugins(config).settings["accounts"].model_dump()["mail_from"] == "pet-api <no-reply@example.com>"
    assert "pets" not in load_plugins(config).settings
    result = run_main("routes", "--env=test", **misspelt)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"pet-api: warning: {name} is not a setting and is ignored"
                                          for name in sorted(misspelt)]
    with pytest.raises(ConfigError) as caught:  # a key the plugin has is still checked beside an unknown one
        load_config("test", environ={**misspelt, "PET_API_PHOTOS__PHOTO_MAX_BYTES": "5"})
    assert str(caught.value) == ("config error: PET_API_PHOTOS__PHOTO_MAX_BYTES (plugin_settings.photos."
                                 "photo_max_bytes): Input should be greater than or equal to 1024")


@pytest.mark.parametrize("config_overrides", [{"plugins": ["core", "accounts", TUNED],
                                               "plugin_settings": {"tuned": {"label": "shown"}}}])
@pytest.mark.gen_test
async def test_a_plugins_settings_error_class_and_scope_reach_the_application(app, api):
    settings = await api.get("/v1/tuned")  # the handler reads application.plugin_settings["tuned"]
    assert settings.status == 200
    assert settings.body == {"code": 200, "data": {"limit": 5, "label": "shown"}, "message": "ok"}

    user, _ = await user_with_token(app)
    refused = await api.post("/v1/tuned", token=token_for(app, user.id, ["tuned:write"]), json={})
    assert_error(refused, 409, 2101, "POST /v1/tuned", "the tune is refused")
    zh = await api.post("/v1/tuned", token=token_for(app, user.id, ["tuned:write"]), json={},
                        headers={"Accept-Language": "zh"})
    assert_error(zh, 409, 2101, "POST /v1/tuned", "调音被拒绝")

    for lang, message in (("en", "the tune is refused"), ("zh", "调音被拒绝")):
        catalog = await api.get("/v1/errors", headers={"Accept-Language": lang})
        assert catalog.status == 200
        assert {"error_code": 2101, "http_status": 409, "message": message} in catalog.body["data"]
    document = (await api.get("/v1/openapi.json")).body
    assert 2101 in document["components"]["schemas"]["Error409"]["allOf"][1]["properties"]["error_code"]["enum"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["x-scopes"]["tuned:write"] == "change the tune"
    assert document["paths"]["/v1/tuned"]["post"]["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/v1/tuned"]["post"]["x-required-scopes"] == ["tuned:write"]


@pytest.mark.parametrize("config_overrides", [{"plugins": ["core", "accounts"]}])
@pytest.mark.gen_test
async def test_without_the_plugin_its_error_codes_and_scopes_are_gone(app, api):
    catalog = await api.get("/v1/errors")
    assert catalog.status == 200
    codes = {entry["error_code"] for entry in catalog.body["data"]}
    assert 2101 not in codes and {999, 1001, 1009, 10033} <= codes
    document = (await api.get("/v1/openapi.json")).body
    assert 2101 not in document["components"]["schemas"]["Error409"]["allOf"][1]["properties"]["error_code"]["enum"]
    assert "/v1/tuned" not in document["paths"]
    assert set(document["components"]["securitySchemes"]["bearerAuth"]["x-scopes"]) == {"users:me", "users:admin"}
    missing = await api.get("/v1/tuned")
    assert_error(missing, 404, 1007, "GET /v1/tuned")


@pytest.mark.gen_test
async def test_a_role_map_granting_an_undeclared_scope_logs_a_warning_at_start(tmp_path, caplog):
    roles = {"user": ["users:me", "pets:read", "photos:read"], "admin": ["users:me", "tuned:write"]}
    config = profile_config(database_url=f"sqlite:///{tmp_path}/x.sqlite3", auto_migrate=True, roles=roles,
                            plugins=["core", "accounts", "pets"])
    app = make_app(config)
    with caplog.at_level(logging.WARNING, logger="pet_api.rbac"):
        await app.startup()
    await app.shutdown()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "pet_api.rbac"]
    assert warnings == ["the role map grants scopes no enabled plugin declares: photos:read, tuned:write"]

    caplog.clear()
    declared = make_app(config.model_copy(update={"plugins": ("core", "accounts", "pets", TUNED)}))
    with caplog.at_level(logging.WARNING, logger="pet_api.rbac"):
        await declared.startup()
    await declared.shutdown()
    assert [r.getMessage() for r in caplog.records if r.name == "pet_api.rbac"] == [
        "the role map grants scopes no enabled plugin declares: photos:read"]


def test_every_setting_of_the_core_and_of_every_plugin_is_named_in_the_readme():
    # An operator finds a setting in the README or not at all: five of the accounts plugin's were named nowhere
    # (link_base, mail_from, email_verification_ttl_seconds, smtp_timeout, mail_poll_seconds; audit config F9).
    # A key is named as `key`, `key: value` or by its variable.
    readme = (ROOT / "README.md").read_text()
    found, broken = discoverable(())  # the built-in plugins and the installed ones (the weight example)
    assert broken == {}
    assert {item.name for item in found} >= {"accounts", "households", "photos", "sync", "weight"}

    def named(key: str, variable: str) -> bool:
        return bool(re.search(rf"`{re.escape(key)}[`:]", readme)) or variable in readme

    missing = [key for key in Config.model_fields if key != "env" and not named(key, f"PET_API_{key.upper()}")]
    missing += [f"plugin_settings.{item.name}.{key}" for item in found if item.plugin.settings
                for key in item.plugin.settings.model_fields if not named(key, settings_variable(item.name, key))]
    assert missing == []

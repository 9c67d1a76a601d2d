"""The plugin's one setting, default_unit: from the profile or PET_API_WEIGHT__DEFAULT_UNIT, checked at start."""

import subprocess
import sys
from typing import Any

import pytest
from conftest import PLUGINS

from server.config import ConfigError, load_config, unknown_variables
from tests.factories import assert_error, both_backends, create_pet, user_with_token
from tests.processes import ROOT, clean_env


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"plugins": list(PLUGINS), "plugin_settings": {"weight": {"default_unit": "lb"}}}


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_weights_and_targets_are_in_the_configured_unit(api, app):
    assert app.plugin_settings["weight"].default_unit == "lb"
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    created = await api.post(f"/v1/pets/{pet['id']}/records", token=token,
                             json={"kind": "weight", "date": "2024-01-01", "value": 22.5})
    assert created.status == 201, created.body
    series = await api.get(f"/v1/pets/{pet['id']}/weight", token=token)
    assert (series.body["data"]["unit"], series.body["data"]["stats"]["last"]) == ("lb", 22.5)
    path = f"/v1/pets/{pet['id']}/weight/target"
    assert_error(await api.request("PUT", path, token=token, json={"weight": 10, "unit": "kg"}), 409, 2101,
                 f"PUT {path}", message="unit: this server records weights in lb, not kg")
    target = await api.request("PUT", path, token=token, json={"weight": 20, "unit": "lb"})
    assert (target.status, target.body["data"]["weight"], target.body["data"]["unit"]) == (200, 20, "lb")
    # a target stored while the server counted in kg is answered in pounds
    await app.db.execute("UPDATE weight_targets SET weight = %s, unit = %s WHERE pet_id = %s", (10, "kg", pet["id"]))
    converted = await api.get(path, token=token)
    assert (converted.body["data"]["weight"], converted.body["data"]["unit"]) == (22.046, "lb")


def test_the_environment_sets_it_over_the_profile():
    config = load_config("test", overrides={"plugins": list(PLUGINS), "plugin_settings": {"weight": {
        "default_unit": "lb"}}}, environ={"PET_API_WEIGHT__DEFAULT_UNIT": "kg"})
    assert config.plugin_settings["weight"] == {"default_unit": "kg"}
    assert "weight" not in load_config("test", overrides={"plugins": list(PLUGINS)}, environ={}).plugin_settings


def test_a_bad_setting_stops_the_start_naming_its_variable():
    with pytest.raises(ConfigError) as raised:
        load_config("test", overrides={"plugins": list(PLUGINS), "plugin_settings": {"weight": {
            "default_unit": "stone"}}}, environ={})
    assert str(raised.value) == ("config error: PET_API_WEIGHT__DEFAULT_UNIT (plugin_settings.weight.default_unit): "
                                 "Input should be 'kg' or 'lb'")


def test_a_key_it_does_not_have_is_warned_of_and_ignored():
    # as for every plugin (README, Configuration): a warning at start, not a refusal
    config = load_config("test", overrides={"plugins": list(PLUGINS), "plugin_settings": {"weight": {
        "colour": "red"}}}, environ={"PET_API_WEIGHT__COLOR": "red"})
    assert unknown_variables({"PET_API_WEIGHT__COLOR": "red"}, config) == ["PET_API_WEIGHT__COLOR",
                                                                          "plugin_settings.weight.colour"]


def test_main_exits_with_one_line_naming_the_variable():
    result = subprocess.run([sys.executable, "main.py", "routes", "--env=test"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=clean_env(PET_API_PLUGINS=",".join(PLUGINS),
                                                                 PET_API_WEIGHT__DEFAULT_UNIT="stone"))
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines() == ["config error: PET_API_WEIGHT__DEFAULT_UNIT "
                                          "(plugin_settings.weight.default_unit): Input should be 'kg' or 'lb'"]

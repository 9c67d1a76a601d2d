"""docs/plugins.md is runnable: its files, written out as they stand, make a plugin that mounts, migrates and
passes its own test with the project's fixtures, and that its Publishing pyproject.toml builds into a wheel."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.processes import ROOT, clean_env, run_main

GUIDE = ROOT / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", re.S)


def write_guide_files(root: Path) -> list[str]:
    """Every `<!-- file: path -->` block of the guide written under root; their paths."""
    written = []
    for path, text in FILE_BLOCK.findall(GUIDE.read_text()):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(path)
    return written


def test_the_guides_plugin_mounts_migrates_and_passes_its_test(tmp_path, mysql_server_url):
    written = write_guide_files(tmp_path)
    assert {"pet_api_notes/__init__.py", "pet_api_notes/migrations/sqlite/0001_notes.sql",
            "tests_notes/test_notes.py"} <= set(written)
    env = {"PYTHONPATH": str(tmp_path), "PET_API_PLUGINS": "core,accounts,pets,pet_api_notes"}

    routes = run_main("routes", "--env=test", **env)
    assert routes.returncode == 0, routes.stderr
    rows = [line.split() for line in routes.stdout.splitlines()]
    assert ["POST", "/v1/pets/{pet_id}/notes", "notes", "pets:write"] in rows

    database = f"sqlite:///{tmp_path}/notes.sqlite3"
    migrated = run_main("migrate", "--env=test", PET_API_DATABASE_URL=database, **env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.splitlines()[-1] == "applied notes 0001_notes"
    bad = run_main("migrate", "--env=test", PET_API_DATABASE_URL=database, PET_API_NOTES__MAX_NOTES="0", **env)
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("config error: PET_API_NOTES__MAX_NOTES (plugin_settings.notes.max_notes): "
                                  "Input should be greater than or equal to 1")

    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "tests_notes")],
        cwd=tmp_path, env=clean_env(PYTHONPATH=f"{ROOT}:{tmp_path}", PET_API_TEST_DATABASE_URL=mysql_server_url),
        capture_output=True, text=True, timeout=300)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert "2 passed" in tested.stdout  # MariaDB and SQLite


def test_the_guides_pyproject_builds_a_wheel_with_the_sql_files_and_the_entry_point(tmp_path):
    written = write_guide_files(tmp_path / "project")
    assert "pyproject.toml" in written and "tests_notes/conftest.py" in written  # the layout the guide leads to
    built = subprocess.run(  # pip's isolated build, as `pip install .` does: setuptools from the index
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
         str(tmp_path / "project")], env=clean_env(), capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == "pet_api_notes-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("pet_api_notes-0.1.0.dist-info/entry_points.txt").decode()
    assert {"pet_api_notes/__init__.py", "pet_api_notes/migrations/mysql/0001_notes.sql",
            "pet_api_notes/migrations/sqlite/0001_notes.sql"} <= names
    assert not [name for name in names if name.startswith("tests_notes/")]
    assert "[pet_api.plugins]\nnotes = pet_api_notes:PLUGIN\n" in entry_points

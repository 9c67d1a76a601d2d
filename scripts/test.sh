#!/usr/bin/env bash
# The project's one test command: installs what the tests need (Debian packages when root, the
# Python dependencies), then runs ruff and pytest. Arguments are passed on to pytest.
# The tests start their own throwaway MariaDB (tests/mariadb_server.py); to use an existing
# server instead, set PET_API_TEST_DATABASE_URL=mysql://root:@127.0.0.1:3306/test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages other tests need: nginx, headless Chromium, systemd-socket-activate, wrk, exiftool.
EXTRA_APT="nginx-light chromium chromium-driver fonts-liberation systemd wrk galera-4 rsync libimage-exiftool-perl"

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q " installed$"; }
have_mariadbd() { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; }

missing=()
have_mariadbd || missing+=(mariadb-server)
for pkg in $EXTRA_APT; do
  have_pkg "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "test.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif ! have_mariadbd && [ -z "${PET_API_TEST_DATABASE_URL:-}" ]; then
    echo "test.sh: mariadbd is missing: run 'apt-get install mariadb-server' as root" \
      "(or set PET_API_TEST_DATABASE_URL)" >&2
    exit 1
  else
    echo "test.sh: warning: missing Debian packages (some tests may fail): ${missing[*]}" >&2
  fi
fi

# pip only when this checkout is not installed (editable) or a requirement is unmet: saves ~7 s.
if ! python3 -P - 2>/dev/null <<'PY'; then
import json
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

dist = metadata.distribution("pet-api")
assert json.loads(dist.read_text("direct_url.json") or "{}").get("url") == Path.cwd().as_uri()
project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
todo = [(Requirement(r), "") for r in project["dependencies"] + project["optional-dependencies"]["test"]]
seen = set()
while todo:
    req, extra = todo.pop()
    if req.marker and not req.marker.evaluate({"extra": extra}) or (str(req), extra) in seen:
        continue
    seen.add((str(req), extra))
    assert req.specifier.contains(metadata.version(req.name), prereleases=True), req
    for name in req.extras:  # e.g. pydantic[email]
        todo += [(Requirement(r), name) for r in metadata.requires(req.name) or []]
sys.exit(0)
PY
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[test]"
fi

# The example external plugin (examples/pet-api-weight), found through its entry point like any installed
# plugin: (re)installed, editable, only when missing, installed from elsewhere, or its version or entry
# points changed. The suite runs its tests and the core's tests with it enabled.
if ! python3 -P - 2>/dev/null <<'PY'; then
import json
import tomllib
from importlib import metadata
from pathlib import Path

source = Path("examples/pet-api-weight")
dist = metadata.distribution("pet-api-weight")
origin = json.loads(dist.read_text("direct_url.json") or "{}")
assert origin.get("url") == source.resolve().as_uri() and origin.get("dir_info", {}).get("editable")
project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
assert dist.version == project["version"]
declared = {(group, name, value) for group, points in project["entry-points"].items() for name, value in points.items()}
assert {(ep.group, ep.name, ep.value) for ep in dist.entry_points} == declared
PY
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps -e ./examples/pet-api-weight
fi

python3 -m ruff check .
python3 -m mypy
status=0
python3 -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
fi
exit "$status"

"""The load-test tool (bench/): it sends what each scenario says and reports what happened. Never a speed
check: nothing here depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import math
import subprocess

import pytest

from bench import engines, growth, scenarios, seed
from server.plugins.accounts.lookalikes import email_skeleton
from tests.conftest import migrated_database
from tests.factories import create_pet, user_with_token
from tests.mariadb_server import connect_database
from tests.processes import ROOT

WRK_REPORT = """Running 5s test @ http://127.0.0.1:8800
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    21.93ms    6.80ms  83.88ms   85.06%
    Req/Sec     2.94k   250.92     3.41k    70.00%
  Latency Distribution
     50%   20.44ms
     75%   23.46ms
     90%   27.83ms
     99%    1.20s
  14640 requests in 5.01s, 5.82MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   2922.10
Transfer/sec:      1.16MB
"""


def test_a_wrk_report_is_read_with_its_units():
    r = engines.parse_wrk("get_pet", WRK_REPORT)
    assert (r.scenario, r.engine, r.requests, r.rps) == ("get_pet", "wrk", 14640, 2922.10)
    assert (r.p50_ms, r.p99_ms, r.seconds) == (20.44, 1200.0, 5.01)
    assert (r.non_2xx, r.errors) == (7, 5)


def test_scenarios_other_than_health_need_a_token_and_names_are_checked():
    with pytest.raises(scenarios.SetupError, match="token"):
        scenarios.build(["health", "list_pets"], "http://127.0.0.1:1", None, [])
    with pytest.raises(scenarios.SetupError, match="unknown scenario 'get_pets'"):
        scenarios.build(["get_pets"], "http://127.0.0.1:1", "t", [1])


def test_the_wrk_script_sends_every_request_of_the_mix():
    scenario = scenarios.build(["get_pet"], "http://x", 'a"b', [3, 4])[0]
    lua = scenario.lua()
    assert '"/v1/pets/3"' in lua and '"/v1/pets/4"' in lua
    assert '["Authorization"] = "Bearer a\\"b"' in lua  # quoted, never spliced raw into the script


async def _run_all(base_url: str, token: str, pet_id: int, run: object) -> dict[str, engines.Result]:
    names = ["health", "get_pet", "list_pets", "create_pet"]
    return {s.name: await run(s) for s in scenarios.build(names, base_url, token, [pet_id])}  # type: ignore[operator]


@pytest.mark.gen_test(timeout=60)
async def test_the_python_engine_reports_every_scenario_and_sends_what_it_counts(app, http_server, base_url, api):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)

    async def run(scenario: scenarios.Scenario) -> engines.Result:
        return await engines.drive(base_url, scenario, seconds=0.3, connections=4)

    results = await _run_all(base_url, token, pet["id"], run)
    for r in results.values():
        assert r.engine == "python"
        assert r.requests > 0 and (r.non_2xx, r.errors) == (0, 0), r
        assert 0 < r.p50_ms <= r.p99_ms and r.rps > 0, r
    listed = await api.get("/v1/pets?limit=1", token=token)
    assert listed.status == 200
    assert listed.body["page"]["total"] == 1 + results["create_pet"].requests  # each counted POST made one pet


@pytest.mark.skipif(not engines.have_wrk(), reason="wrk is not installed")
@pytest.mark.gen_test(timeout=60)
async def test_the_wrk_engine_reports_every_scenario(app, http_server, base_url, api):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    loop = asyncio.get_running_loop()

    async def run(scenario: scenarios.Scenario) -> engines.Result:  # wrk blocks: off the loop serving it
        return await loop.run_in_executor(
            None, lambda: engines.run_wrk(base_url, scenario, seconds=1, connections=4, threads=1))

    results = await _run_all(base_url, token, pet["id"], run)
    for r in results.values():
        assert r.engine == "wrk"
        assert r.requests > 0 and (r.non_2xx, r.errors) == (0, 0), r
        assert not math.isnan(r.p99_ms) and r.p50_ms <= r.p99_ms, r
    listed = await api.get("/v1/pets?limit=1", token=token)
    assert listed.body["page"]["total"] > results["create_pet"].requests  # the POSTs reached the API


def test_seeded_users_have_the_look_alike_key_registration_gives(mysql_server_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without it, a server started on a 1,000,000-pet seed backfilled 450,000 accounts before it was ready."""
    monkeypatch.setattr(seed, "SKELETON_ROWS", 100)  # several batches, the last one short
    url = migrated_database(mysql_server_url, "pet_api_bench_seed")
    conn = connect_database(url)
    try:
        shape = seed.seed(conn, 1500, records_per_pet=1)
        with conn.cursor() as cur:
            cur.execute("SELECT id, email, email_skeleton FROM users ORDER BY id")
            users = cur.fetchall()
    finally:
        conn.close()
    assert shape.users > 300 and shape.users % 100 != 0
    assert [row[0] for row in users] == list(range(1, shape.users + 1))
    assert [row[2] for row in users] == [email_skeleton(row[1]) for row in users]
    assert users[0][1] == seed.email(1) == "u1@growth.example"


def test_growth_s_results_directory_is_ignored_by_git():
    """Audit F11: every growth run left `?? bench/results/` in git status."""
    assert growth.RESULTS == ROOT / "bench" / "results"
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/results/growth-20250101-000000.json"], cwd=ROOT,
                             check=False)
    assert ignored.returncode == 0

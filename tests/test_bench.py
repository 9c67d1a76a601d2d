"""The load-test tool (bench/): it sends what each scenario says and reports what happened. Never a speed
check: nothing here depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import __main__ as bench_main
from bench import engines, growth, scenarios, seed
from server.plugins.accounts.lookalikes import email_skeleton
from tests.conftest import migrated_database
from tests.factories import create_pet, user_with_token
from tests.mariadb_server import connect_database
from tests.processes import ROOT, free_port

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
        assert r.p50_ms is not None and r.p99_ms is not None and r.p50_ms <= r.p99_ms, r
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


# ---- the command line: every refusal or failure is one line on stderr and an exit code, nothing left behind

def _strict_json(text: str) -> Any:
    """json.loads as RFC 8259 has it: NaN and Infinity are no JSON."""
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


@pytest.fixture
def fake_wrk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A `wrk` on PATH that keeps its arguments and its Lua script, prints what it is given and exits with it."""
    def install(stdout: str = WRK_REPORT, stderr: str = "", code: int = 0) -> SimpleNamespace:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        (tmp_path / "out").write_text(stdout)
        (tmp_path / "err").write_text(stderr)
        wrk = bin_dir / "wrk"
        wrk.write_text(f"""#!/bin/sh
printf '%s\\n' "$@" > {tmp_path}/args
while [ $# -gt 0 ]; do [ "$1" = -s ] && cp "$2" {tmp_path}/script.lua; shift; done
cat {tmp_path}/out; cat {tmp_path}/err >&2; exit {code}
""")
        wrk.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        return SimpleNamespace(args=lambda: (tmp_path / "args").read_text().split("\n")[:-1],
                               script=lambda: (tmp_path / "script.lua").read_text())
    return install


@pytest.fixture
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the tools create theirs in, empty: what is left in it afterwards was left behind."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def _bench(*args: str) -> int:
    try:
        return bench_main.main(list(args))
    except SystemExit as exc:  # argparse's refusals
        assert isinstance(exc.code, int)
        return exc.code


QUICK = ("--duration", "1", "--warmup", "0", "--connections", "2")


@pytest.mark.skipif(not engines.have_wrk(), reason="wrk is not installed")
def test_wrk_that_cannot_connect_gives_its_reason_in_one_line(capsys):
    """Audit F1: a traceback ending in an empty 'wrk did not report (health):', wrk's stderr dropped."""
    port = free_port()
    assert _bench("--url", f"http://127.0.0.1:{port}", "--scenarios", "health", "--engine", "wrk", *QUICK) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == f"bench: wrk failed (health): unable to connect to 127.0.0.1:{port} Connection refused"


def test_a_wrk_failure_without_a_message_names_its_exit_code(fake_wrk, capsys):
    fake_wrk(stdout="", code=3)
    assert _bench("--url", "http://127.0.0.1:1", "--scenarios", "health", "--engine", "wrk", *QUICK) == 1
    assert _one_line(capsys.readouterr().err) == "bench: wrk failed (health): exit code 3"


def test_a_scenario_without_answers_writes_null_percentiles_not_nan(tmp_path, capsys):
    """Audit F2: the JSON file held `"p50_ms": NaN`, which no strict JSON parser reads."""
    out = tmp_path / "r.json"
    assert _bench("--url", f"http://127.0.0.1:{free_port()}", "--scenarios", "health", "--engine", "python",
                  "--duration", "0.2", "--warmup", "0", "--connections", "2", "--json", str(out)) == 1
    [row] = _strict_json(out.read_text())
    assert (row["scenario"], row["engine"], row["requests"], row["p50_ms"], row["p99_ms"]) == (
        "health", "python", 0, None, None)
    assert row["errors"] > 0
    printed = capsys.readouterr().out.splitlines()[-1].split()
    assert printed[:4] == ["health", "0", "-", "-"]


def test_the_wrk_engine_sends_the_paths_under_the_url_s_prefix(fake_wrk):
    """Audit F3: wrk was given the paths without the prefix and measured /v1/... at the host's root."""
    wrk = fake_wrk()
    scenario = scenarios.build(["health", "create_pet"], "http://127.0.0.1:1/api", "t", [])
    r = engines.run_wrk("http://127.0.0.1:1/api/", scenario[1], seconds=1, connections=2, threads=1)
    assert wrk.args()[-1] == "http://127.0.0.1:1"  # wrk sends the script's paths as they are
    assert '{"POST", "/api/v1/pets", {' in wrk.script()
    assert (r.requests, r.p50_ms) == (14640, 20.44)
    engines.run_wrk("http://127.0.0.1:1", scenario[0], seconds=1, connections=2, threads=1)
    assert '{"GET", "/v1/health", {}, nil}' in wrk.script()


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://h/x", "http://h/x?debug=1", "http://h:99999"])
def test_a_url_that_is_no_base_url_is_refused(url, capsys):
    assert _bench("--url", url, "--scenarios", "health") == 2
    assert _one_line(capsys.readouterr().err).startswith("python -m bench: argument --url: ")


UNREACHABLE = "mysql://root:@127.0.0.1:1"  # a refusal comes first; a run (the old code's) fails at once


def _growth(*args: str) -> int:
    try:
        return growth.main(list(args))
    except SystemExit as exc:
        assert isinstance(exc.code, int)
        return exc.code


@pytest.mark.parametrize(("sizes", "says"), [
    ("1k,5000", "not a whole number: '1k'"),
    ("10", "10 is below the minimum, 20: the caller is caretaker of 20 seeded pets (--help"),
    ("0", "0 is below the minimum, 20"),
    ("1000,-5", "-5 is below the minimum, 20"),
    ("1000,5000,1000", "1000 given twice"),
    (",", "no size given"),
])
def test_growth_refuses_bad_sizes_before_seeding(sizes, says, own_tmp, capsys, monkeypatch):
    """Audit F4: tracebacks, some after seeding (a duplicate key at 10 pets); a size given twice reseeded a
    database under its running server."""
    monkeypatch.setattr(growth, "_sql_server", lambda url: pytest.fail("connected before checking --sizes"))
    assert _growth("--sizes", sizes, "--server-url", UNREACHABLE) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("python -m bench growth: argument --sizes: ") and says in err, err
    assert list(own_tmp.iterdir()) == []


def test_growth_measures_its_sizes_smallest_first():
    assert growth._sizes("100000, 1000,20") == [20, 1000, 100000]


def test_growth_on_an_unreachable_server_says_so_in_one_line_and_leaves_nothing(own_tmp, capsys, monkeypatch):
    """Audit F5: a pymysql traceback, and a /tmp/pet-api-growth-* directory left behind."""
    monkeypatch.setattr(engines, "have_wrk", lambda: True)
    port = free_port()
    assert _growth("--sizes", "1000", "--server-url", f"mysql://root:hush@127.0.0.1:{port}") == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"python -m bench growth: cannot connect to MariaDB at 127.0.0.1:{port}: Can't connect")
    assert "hush" not in err
    assert list(own_tmp.iterdir()) == []


@pytest.mark.parametrize(("kind", "message"), [
    ("RuntimeError", "server exited 1:\n{...the log's tail...}"),
    ("EngineError", "wrk failed (get_pet): unable to connect to 127.0.0.1:1 Connection refused"),
])
def test_a_growth_run_that_fails_says_why_in_one_line_and_removes_its_work_directory(kind, message, own_tmp, capsys,
                                                                                    monkeypatch):
    failure = RuntimeError(message) if kind == "RuntimeError" else engines.EngineError(message)
    monkeypatch.setattr(engines, "have_wrk", lambda: True)
    monkeypatch.setattr(growth, "_sql_server", lambda url: SimpleNamespace(close=lambda: None))

    def fail(args: Any, say: Any, work: Path, runs: list[dict[str, Any]]) -> None:
        (work / "server-1000.log").write_text("...")
        raise failure

    monkeypatch.setattr(growth, "_growth", fail)
    assert _growth("--sizes", "1000", "--server-url", UNREACHABLE) == 1
    assert _one_line(capsys.readouterr().err) == "python -m bench growth: " + str(failure).split("\n")[0]
    assert list(own_tmp.iterdir()) == []


def _result(name: str, p50: float | None = 2.0) -> engines.Result:
    return engines.Result(name, "wrk", 10, 1.0, 10.0, p50, None if p50 is None else 2 * p50, 0, 0)


def test_ctrl_c_keeps_the_rows_measured_and_exits_130_without_a_traceback(tmp_path, capsys, monkeypatch):
    """Audit F6: a KeyboardInterrupt traceback, and the JSON of the scenarios already measured never written."""
    def run(engine: str, url: str, scenario: scenarios.Scenario, args: Any, seconds: float) -> engines.Result:
        if scenario.name == "create_pet":
            raise KeyboardInterrupt
        return _result(scenario.name)

    monkeypatch.setattr(bench_main, "_run", run)
    out = tmp_path / "r.json"
    assert _bench("--url", "http://127.0.0.1:1", "--token", "t", "--scenarios", "health,create_pet",
                  "--engine", "python", "--json", str(out)) == 130
    assert _one_line(capsys.readouterr().err) == "bench: interrupted"
    assert [row["scenario"] for row in _strict_json(out.read_text())] == ["health"]


def test_ctrl_c_in_growth_keeps_the_rows_measured_and_removes_its_work_directory(tmp_path, own_tmp, capsys,
                                                                                 monkeypatch):
    monkeypatch.setattr(engines, "have_wrk", lambda: True)
    monkeypatch.setattr(growth, "_sql_server", lambda url: SimpleNamespace(close=lambda: None))

    def interrupted(args: Any, say: Any, work: Path, runs: list[dict[str, Any]]) -> None:
        (work / "server-1000.log").write_text("...")
        runs.append({"pets": 1000, "seed_seconds": 0.1, "scenarios": {"get_pet": _result("get_pet").as_dict()}})
        raise KeyboardInterrupt

    monkeypatch.setattr(growth, "_growth", interrupted)
    out = tmp_path / "g.json"
    assert _growth("--sizes", "1000", "--server-url", UNREACHABLE, "--json", str(out)) == 130
    printed = capsys.readouterr()
    assert _one_line(printed.err) == "python -m bench growth: interrupted"
    assert "| get_pet | 2.00 | 4.00 | 10 | 1.00 |" in printed.out
    written = _strict_json(out.read_text())
    assert (written["complete"], written["sizes"], written["runs"][0]["scenarios"]["get_pet"]["p50_ms"]) == (
        False, [1000], 2.0)
    assert list(own_tmp.iterdir()) == []


def test_growth_refuses_an_unknown_request_kind_naming_the_known_ones(own_tmp, capsys):
    """Audit F7: `--only get_pets` measured nothing, wrote an empty table and JSON, and exited 0."""
    assert _growth("--sizes", "1000", "--only", "get_pet,get_pets", "--server-url", UNREACHABLE) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("python -m bench growth: argument --only: unknown request kind get_pets: choose from "
                          "get_pet, list_first, ")
    assert list(own_tmp.iterdir()) == []


def test_growth_s_request_kinds_are_the_ones_it_measures(monkeypatch):
    monkeypatch.setattr(growth, "_cursor_at", lambda url, sql, sort: "c")
    actors = growth.Actors("t", "a", list(range(1001, 1201)), 1001, "c", "caller@growth.example")
    assert tuple(s.name for s in growth.scenarios("mysql://x/y", 1000, actors)) == growth.KINDS
    assert set(growth.CLUSTER_KINDS) <= set(growth.KINDS)


@pytest.mark.parametrize("args", [("--connections", "0"), ("--duration", "-1"), ("--duration", "0"),
                                  ("--duration", "nan"), ("--warmup", "-1"), ("--threads", "0")])
def test_bench_refuses_counts_and_durations_out_of_range(args, capsys):
    """Audit F8: --connections 0 or --duration -1 measured nothing and exited 0."""
    assert _bench("--url", "http://127.0.0.1:1", "--scenarios", "health", *args) == 2
    assert _one_line(capsys.readouterr().err).startswith(f"python -m bench: argument {args[0]}: ")


@pytest.mark.parametrize("args", [("--duration", "1.5"), ("--duration", "0"), ("--warmup", "-1"),
                                  ("--connections", "0"), ("--records-per-pet", "-1"), ("--cluster-pets", "19")])
def test_growth_refuses_counts_and_durations_out_of_range(args, own_tmp, capsys):
    assert _growth("--sizes", "1000", "--server-url", UNREACHABLE, *args) == 2
    assert _one_line(capsys.readouterr().err).startswith(f"python -m bench growth: argument {args[0]}: ")
    assert list(own_tmp.iterdir()) == []


def test_the_wrk_engine_reports_the_whole_seconds_it_runs(fake_wrk, capsys):
    """Audit F8: wrk ran 1 s for --duration 1.4 while the header said 1.4 s."""
    wrk = fake_wrk()
    assert _bench("--url", "http://127.0.0.1:1", "--scenarios", "health", "--engine", "wrk", "--duration", "1.4",
                  "--warmup", "0", "--connections", "2") == 1  # the report's non-2xx and errors
    assert "-d1s" in wrk.args()
    assert "engine wrk  1 s x 2 connections per scenario" in capsys.readouterr().out


def test_growth_without_a_warm_up_neither_warms_up_nor_pauses(monkeypatch):
    """Audit F8: --warmup 0 still ran wrk for 1 s and paused 1 s before every measurement."""
    monkeypatch.setattr(engines, "run_wrk", lambda *a, **kw: pytest.fail("warmed up"))
    monkeypatch.setattr(growth.time, "sleep", lambda s: pytest.fail("paused"))
    growth._warm_up("http://127.0.0.1:1", scenarios.Scenario("x", ()), SimpleNamespace(warmup=0, connections=1))


@pytest.mark.parametrize("tool", [_bench, _growth])
def test_json_into_a_missing_directory_is_refused_before_the_run(tool, tmp_path, own_tmp, capsys):
    """Audit F9: the whole run went by, then a FileNotFoundError traceback."""
    missing = tmp_path / "nodir" / "r.json"
    where = ("--url", "http://127.0.0.1:1") if tool is _bench else ("--server-url", UNREACHABLE)
    assert tool(*where, "--json", str(missing)) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.endswith(f"argument --json: no such directory: {missing.parent} (--help for usage)")


def test_readme_shows_the_tables_as_growth_prints_them():
    """Audit F10: README's headers, alignment and verdicts were not what the tool prints."""
    readme = (ROOT / "README.md").read_text()
    runs = [{"pets": n, "scenarios": {k: _result(k, 10.0 if k != "admin_filter_total" else 10.0 * (n // 1000))
                                      .as_dict() for k in growth.KINDS}} for n in (1000, 100_000, 1_000_000)]
    head, align, *rows = growth.table(runs).split("\n")
    assert f"\n{head}\n{align}\n| get_pet | " in readme
    assert rows[growth.KINDS.index("admin_filter_total")].endswith(" | 1000.00 (grows) |")
    assert "(grows) |\n" in readme
    cluster = {"targets": {label: {k: _result(k).as_dict() for k in growth.CLUSTER_KINDS}
                           for label in ("one MariaDB", "Galera x3, reads from any")}}
    head, align, *_ = growth.cluster_table(cluster).split("\n")
    assert f"\n{head}\n{align}\n| get_pet | " in readme


def test_a_growth_table_marks_a_row_over_the_bound_and_a_missing_percentile():
    runs = [{"pets": n, "scenarios": {"get_pet": _result("get_pet", p50).as_dict()}}
            for n, p50 in ((1000, 10.0), (5000, 20.0))]
    assert growth.table(runs).split("\n")[-1] == "| get_pet | 10.00 | 20.00 | 20.00 | 40.00 | 10 | 10 | 2.00 **over** |"
    runs[1]["scenarios"]["get_pet"] = _result("get_pet", None).as_dict()
    assert growth.table(runs).split("\n")[-1] == "| get_pet | 10.00 | - | 20.00 | - | 10 | 10 | - |"


def test_growth_s_results_directory_is_ignored_by_git():
    """Audit F11: every growth run left `?? bench/results/` in git status."""
    assert growth.RESULTS == ROOT / "bench" / "results"
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/results/growth-20250101-000000.json"], cwd=ROOT,
                             check=False)
    assert ignored.returncode == 0

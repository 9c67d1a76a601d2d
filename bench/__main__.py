"""Load-test a pet-api deployment: requests/s and p50/p99 latency per scenario.

    python -m bench --url https://pets.example.com --token "$TOKEN" --duration 10 --connections 64
    python -m bench growth --sizes 1000,100000,1000000     (seeds its own database: see bench/growth.py)

Scenarios (as in ../shared/bench/compare.py): health (GET /v1/health), get_pet (GET /v1/pets/{id} over the
token's own pets), list_pets (GET /v1/pets?limit=20), create_pet (POST /v1/pets: it WRITES a pet per
request, so it only runs when named). The token may come from PET_API_BENCH_TOKEN instead of --token (it
then stays out of the process list). Uses wrk when installed (Debian: apt-get install wrk), else a
pure-Python client, which needs a core of its own and cannot push a fast server to its limit.
"""

from __future__ import annotations

import argparse
import os
import sys

from bench import cli, engines, scenarios

PROG = "python -m bench"


def _parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, type=cli.base_url,
                   help="base URL of the deployment, e.g. http://127.0.0.1:8000 (or https://host/prefix)")
    p.add_argument("--token", default=os.environ.get("PET_API_BENCH_TOKEN"),
                   help="bearer token (default: $PET_API_BENCH_TOKEN); needed by all but health")
    p.add_argument("--duration", type=cli.seconds(zero=False), default=10.0,
                   help="seconds per scenario (default 10; wrk runs whole seconds, at least 1)")
    p.add_argument("--connections", type=cli.whole(1), default=64,
                   help="concurrent keep-alive connections (default 64)")
    p.add_argument("--threads", type=cli.whole(1), default=1, help="wrk threads (default 1)")
    p.add_argument("--scenarios", default=",".join(scenarios.READ_ONLY),
                   help=f"comma-separated, from {', '.join(scenarios.ALL)} (default: the read-only ones)")
    p.add_argument("--pet-id", type=int, action="append", default=[], help="pet ids for get_pet (repeatable)")
    p.add_argument("--warmup", type=cli.seconds(zero=True), default=1.0,
                   help="unmeasured seconds before each scenario (default 1; 0: none)")
    p.add_argument("--engine", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--insecure", action="store_true", help="python engine: do not verify the TLS certificate")
    p.add_argument("--json", metavar="FILE", type=cli.json_file,
                   help="also write the results as JSON (its directory must exist)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["growth"]:  # python -m bench growth --sizes ...: cost as the data grows (bench/growth.py)
        from bench import growth

        return growth.main(argv[1:])
    args = _parser().parse_args(argv)
    engine = args.engine
    if engine == "auto":
        engine = "wrk" if engines.have_wrk() else "python"
    elif engine == "wrk" and not engines.have_wrk():
        return cli.fail("bench", "wrk is not installed (apt-get install wrk), or use --engine python",
                        cli.BAD_ARGUMENTS)
    results: list[engines.Result] = []
    try:
        code = _measure(engine, args, results)
    except KeyboardInterrupt:
        code = cli.fail("bench", "interrupted", cli.INTERRUPTED)
    except engines.EngineError as exc:
        code = cli.fail("bench", str(exc), 1)
    if args.json and results:  # what was measured, also when a later scenario failed or was interrupted
        try:
            cli.write_json(args.json, [r.as_dict() for r in results])
        except OSError as exc:
            return cli.fail("bench", f"cannot write {args.json}: {exc.strerror}", 1)
    return code


def _measure(engine: str, args: argparse.Namespace, results: list[engines.Result]) -> int:
    """Set the scenarios up, then warm up and measure each in turn, appending to `results`; the exit code."""
    try:
        chosen = scenarios.build([s.strip() for s in args.scenarios.split(",") if s.strip()], args.url,
                                 args.token, args.pet_id)
    except (scenarios.SetupError, OSError) as exc:
        return cli.fail("bench", str(exc), cli.BAD_ARGUMENTS)
    seconds = engines.wrk_seconds(args.duration) if engine == "wrk" else args.duration
    print(f"target {args.url}  engine {engine}  {seconds:g} s x {args.connections} connections per scenario")
    print(f"{'scenario':12} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'requests':>10} {'non-2xx':>8} {'errors':>7}")
    for scenario in chosen:
        if args.warmup > 0:
            _run(engine, args.url, scenario, args, args.warmup)
        r = _run(engine, args.url, scenario, args, args.duration)
        results.append(r)
        print(f"{r.scenario:12} {r.rps:10.0f} {engines.ms(r.p50_ms, '9.1f')} {engines.ms(r.p99_ms, '9.1f')} "
              f"{r.requests:10d} {r.non_2xx:8d} {r.errors:7d}", flush=True)
    return 1 if any(r.non_2xx or r.errors for r in results) else 0


def _run(engine: str, url: str, scenario: scenarios.Scenario, args: argparse.Namespace,
         seconds: float) -> engines.Result:
    if engine == "wrk":
        return engines.run_wrk(url, scenario, seconds=seconds, connections=args.connections, threads=args.threads)
    return engines.run_python(url, scenario, seconds=seconds, connections=args.connections, insecure=args.insecure)


if __name__ == "__main__":
    sys.exit(main())

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
import json
import os
import sys

from bench import engines, scenarios


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="base URL of the deployment, e.g. http://127.0.0.1:8000")
    p.add_argument("--token", default=os.environ.get("PET_API_BENCH_TOKEN"),
                   help="bearer token (default: $PET_API_BENCH_TOKEN); needed by all but health")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default 10)")
    p.add_argument("--connections", type=int, default=64, help="concurrent keep-alive connections (default 64)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--scenarios", default=",".join(scenarios.READ_ONLY),
                   help=f"comma-separated, from {', '.join(scenarios.ALL)} (default: the read-only ones)")
    p.add_argument("--pet-id", type=int, action="append", default=[], help="pet ids for get_pet (repeatable)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each scenario")
    p.add_argument("--engine", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--insecure", action="store_true", help="python engine: do not verify the TLS certificate")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
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
        print("bench: wrk is not installed (apt-get install wrk), or use --engine python", file=sys.stderr)
        return 2
    url = args.url.rstrip("/")
    try:
        chosen = scenarios.build([s.strip() for s in args.scenarios.split(",") if s.strip()], url, args.token,
                                 args.pet_id)
    except (scenarios.SetupError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(f"target {url}  engine {engine}  {args.duration:g} s x {args.connections} connections per scenario")
    print(f"{'scenario':12} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'requests':>10} {'non-2xx':>8} {'errors':>7}")
    results = []
    for scenario in chosen:
        if args.warmup > 0:
            _run(engine, url, scenario, args, args.warmup)
        r = _run(engine, url, scenario, args, args.duration)
        results.append(r)
        print(f"{r.scenario:12} {r.rps:10.0f} {r.p50_ms:9.1f} {r.p99_ms:9.1f} {r.requests:10d} {r.non_2xx:8d} "
              f"{r.errors:7d}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.as_dict() for r in results], f, indent=1)
    return 1 if any(r.non_2xx or r.errors for r in results) else 0


def _run(engine: str, url: str, scenario: scenarios.Scenario, args: argparse.Namespace,
         seconds: float) -> engines.Result:
    if engine == "wrk":
        return engines.run_wrk(url, scenario, seconds=seconds, connections=args.connections, threads=args.threads)
    return engines.run_python(url, scenario, seconds=seconds, connections=args.connections, insecure=args.insecure)


if __name__ == "__main__":
    sys.exit(main())

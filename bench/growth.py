"""What a request costs as the data grows: seed 1,000 then 100,000 then 1,000,000 pets (bench/seed.py: skewed
owners, ~10 records per pet, shares, photos, a change log), run one pet-api worker on each, and measure with wrk
the p50/p99 and req/s of the same requests at every size; print a table and write JSON.

    python -m bench growth --sizes 1000,100000,1000000 [--duration 5] [--connections 16]

The database is a throwaway MariaDB (tests/mariadb_server.py) with a 4 GB buffer pool, started and removed by the
run, unless --server-url names one (databases `pet_api_growth_<size>` are dropped and recreated there). Every
size gets its database and server first; then each request kind runs against every size in turn, so the
machine's load at a moment weighs on all the columns alike (compare columns within a run). The server runs
the test profile (cheaper argon2id, so `login` measures the request, not the hash) with one worker and WARNING
logs. The callers are the same at every size, so what changes between columns is everyone else's data:
- `caller` owns 200 pets (one of them with 5,000 records), is caretaker of 20 shared ones, and has ~400 open
  due items; its sync cursor was taken before "a day" of the deployment's changes (1 per 100 pets) and its own;
- `admin` (pets:admin) lists every pet.
Rows whose answer or whose work inherently grows with the deployment are named in GROWS with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import engines
from bench.scenarios import Request, Scenario, call
from bench.seed import seed

PASSWORD = "growth-bench-password"  # noqa: S105 - a throwaway account on a throwaway database
CALLER_PETS = 200
BIG_PET_RECORDS = 5000
SETTLE = 1.0  # seconds between a warm-up and its measured run
BOUND = 1.5  # p50 at the largest size over p50 at the smallest, at most
RESULTS = Path(__file__).resolve().parent / "results"
# The rows allowed to grow, and why (the README's table repeats these).
GROWS = {
    "admin_filter_total": "counts every matching pet (include_total=true): the answer's total is the deployment",
    "admin_q": "a substring of any name in the whole deployment: no B-tree index serves LIKE '%x%'; a common one "
               "(measured: 'bel') finds its page early in id order, a rare or absent one reads every pet",
}


@dataclass
class Actors:
    caller_token: str
    admin_token: str
    pet_ids: list[int]
    big_pet: int
    old_sync_cursor: str
    caller_email: str


def _main_command(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve().parents[1] / "main.py"), *args]


def _sql(url: str) -> Any:
    from tests.mariadb_server import connect_server

    conn = connect_server(url, read_timeout=3600)
    conn.select_db(url.rpartition("/")[2])
    return conn


def _prepare(server_url: str, name: str, pets: int, records_per_pet: int) -> tuple[str, float]:
    """A migrated, seeded database; its URL and the seconds seeding took."""
    from tests.conftest import migrate_database
    from tests.mariadb_server import create_database

    url = create_database(server_url, name)
    asyncio.run(migrate_database(url))
    started = time.monotonic()
    conn = _sql(url)
    try:
        seed(conn, pets, records_per_pet=records_per_pet)
    finally:
        conn.close()
    return url, time.monotonic() - started


def _register(base: str, email: str) -> int:
    status, body = call(base, "POST", "/v1/users", body=json.dumps(
        {"email": email, "password": PASSWORD, "nickname": email.partition("@")[0]}).encode())
    if status != 201 or not isinstance(body, dict):
        raise RuntimeError(f"registration answered {status}: {body}")
    return int(body["data"]["id"])


def _login(base: str, email: str) -> str:
    status, body = call(base, "POST", "/v1/tokens", body=json.dumps({"account": email, "secret": PASSWORD}).encode())
    if status != 201 or not isinstance(body, dict):
        raise RuntimeError(f"login answered {status}: {body}")
    return str(body["data"]["token"])


def _actors(base: str, url: str, pets: int) -> Actors:
    """The callers: registered through the API, their pets and records written in bulk."""
    caller_email, admin_email = "caller@growth.example", "admin@growth.example"
    caller, admin = _register(base, caller_email), _register(base, admin_email)
    conn = _sql(url)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE users SET email_verified_at = NOW(6) WHERE id IN (%s, %s)", (caller, admin))
            cur.execute("UPDATE users SET role = 'admin' WHERE id = %s", (admin,))
        token = _login(base, caller_email)
        status, body = call(base, "GET", "/v1/sync?limit=10", token=token)  # nothing yet: a cursor at the head
        if status != 200 or not isinstance(body, dict) or body["data"]["changes"]:
            raise RuntimeError(f"first sync answered {status}: {body}")
        old_cursor = str(body["data"]["cursor"])
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
            cur.execute("SELECT value FROM sync_counter WHERE name = 'seq'")
            head = int(cur.fetchone()[0])
            day = max(1, pets // 100)  # a day of everyone's changes after the cursor
            cur.execute("INSERT INTO sync_changes (seq, type, object_id, pet_id, user_id, action, created_at)"  # noqa: S608
                        f" SELECT {head} + seq, 'pet', seq, seq, 1, 'updated', NOW(6) FROM seq_1_to_{day}")  # noqa: S608
            first = pets + 1
            cur.execute(
                "INSERT INTO pets (id, owner_id, name, species, sex, status, created_at, updated_at, version)"  # noqa: S608
                f" SELECT {pets} + seq, %s, CONCAT(ELT(1 + seq MOD 6, 'Rex', 'Bella', 'Max', 'Luna', 'Milo', 'Zoe'),"  # noqa: S608
                " ' ', seq), ELT(1 + seq MOD 3, 'dog', 'cat', 'bird'), 'unknown',"
                f" IF(seq MOD 7 = 0, 'pending', 'available'), NOW(6) - INTERVAL seq MINUTE, NOW(6), 1"
                f" FROM seq_1_to_{CALLER_PETS}", (caller,))
            cur.execute("INSERT INTO pet_members (pet_id, user_id, role, since) SELECT id, owner_id, 'owner',"
                        " created_at FROM pets WHERE owner_id = %s", (caller,))
            cur.execute("INSERT INTO pet_members (pet_id, user_id, role, since) SELECT seq * %s, %s, 'caretaker',"
                        " NOW(6) FROM seq_1_to_20", (max(1, pets // 20), caller))
            base_seq = head + day
            cur.execute("INSERT INTO sync_access (pet_id, user_id, granted_seq) SELECT pet_id, user_id, %s"
                        " FROM pet_members WHERE user_id = %s", (base_seq, caller))
            cur.execute("INSERT INTO sync_changes (seq, type, object_id, pet_id, user_id, action, created_at)"
                        " SELECT %s + id - %s + 1, 'pet', id, id, owner_id, 'created', created_at FROM pets"
                        " WHERE owner_id = %s", (base_seq, first, caller))
            cur.execute("UPDATE sync_counter SET value = (SELECT MAX(seq) FROM sync_changes) WHERE name = 'seq'")
            cur.execute(
                "INSERT INTO records (pet_id, kind, date, note, due_date, completed_at, created_at, updated_at,"
                " version) SELECT p.id, ELT(1 + s.seq MOD 4, 'vaccination', 'vet_visit', 'weight', 'medication'),"
                " CURDATE() - INTERVAL s.seq * 20 DAY, NULL,"
                " IF(s.seq MOD 5 = 0, CURDATE() - INTERVAL 10 DAY + INTERVAL (p.id + s.seq) MOD 60 DAY, NULL),"
                " NULL, NOW(6), NOW(6), 1 FROM pets p JOIN seq_1_to_10 s WHERE p.owner_id = %s", (caller,))
            cur.execute(
                "INSERT INTO records (pet_id, kind, date, note, created_at, updated_at, version)"  # noqa: S608
                f" SELECT %s, 'weight', CURDATE() - INTERVAL seq DAY, NULL, NOW(6), NOW(6), 1"
                f" FROM seq_1_to_{BIG_PET_RECORDS}", (first,))
            cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
            cur.execute("ANALYZE TABLE pets, pet_members, records, sync_changes, sync_access")
            cur.fetchall()
    finally:
        conn.close()
    return Actors(token, _login(base, admin_email), list(range(first, first + CALLER_PETS)), first, old_cursor,
                  caller_email)


def _cursor_at(url: str, sql: str, sort: str) -> str:
    """A list cursor after the row the query selects (its sort keys), as the server encodes it."""
    from server.services import encode_cursor

    conn = _sql(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
    finally:
        conn.close()
    return encode_cursor(sort, list(row))


def scenarios(url: str, pets: int, a: Actors) -> list[Scenario]:
    """Every measured request, reads first (the writes add rows)."""
    me = {"Authorization": f"Bearer {a.caller_token}"}
    admin = {"Authorization": f"Bearer {a.admin_token}"}
    body = {**me, "Content-Type": "application/json"}

    def get(name: str, path: str, who: dict[str, str] = me) -> Scenario:
        return Scenario(name, (Request("GET", path, who),))

    deep = int(pets * 0.75)
    own_deep = _cursor_at(url, f"SELECT id FROM pets WHERE id > {pets} ORDER BY id LIMIT 1 OFFSET 150", "id")  # noqa: S608
    admin_deep = _cursor_at(url, f"SELECT id FROM pets ORDER BY id LIMIT 1 OFFSET {deep}", "id")  # noqa: S608
    admin_deep_name = _cursor_at(url, f"SELECT name, id FROM pets ORDER BY name, id LIMIT 1 OFFSET {deep}",  # noqa: S608
                                 "name")
    records_deep = _cursor_at(url, f"SELECT date, id FROM records WHERE pet_id = {a.big_pet}"  # noqa: S608
                              " ORDER BY date DESC, id DESC LIMIT 1 OFFSET 4000", "-date")
    out = [
        Scenario("get_pet", tuple(Request("GET", f"/v1/pets/{i}", me) for i in a.pet_ids[:50])),
        get("list_first", "/v1/pets?limit=20"),
        get("list_deep_cursor", f"/v1/pets?limit=20&cursor={own_deep}"),
        *(get(f"list_sort_{s.replace('-', 'desc_')}", f"/v1/pets?limit=20&sort={s}")
          for s in ("-id", "name", "-name", "created_at", "-created_at")),
        get("list_species", "/v1/pets?limit=20&species=cat"),
        get("list_status", "/v1/pets?limit=20&status=pending"),
        get("list_role", "/v1/pets?limit=20&role=caretaker"),
        get("list_q", "/v1/pets?limit=20&q=bel"),
        get("admin_first", "/v1/pets?limit=20&include_total=false", admin),
        get("admin_deep_cursor", f"/v1/pets?limit=20&include_total=false&cursor={admin_deep}", admin),
        get("admin_deep_name", f"/v1/pets?limit=20&sort=name&include_total=false&cursor={admin_deep_name}", admin),
        get("admin_filter", "/v1/pets?limit=20&species=reptile&sort=name&include_total=false", admin),
        get("admin_filter_total", "/v1/pets?limit=20&species=reptile&sort=name", admin),
        get("admin_q", "/v1/pets?limit=20&q=bel&include_total=false", admin),
        get("records_5000", f"/v1/pets/{a.big_pet}/records?limit=20"),
        get("records_deep_cursor", f"/v1/pets/{a.big_pet}/records?limit=20&cursor={records_deep}"),
        get("reminders_200_pets", "/v1/reminders?within_days=30"),
        get("sync_old_cursor", f"/v1/sync?limit=100&cursor={a.old_sync_cursor}"),
        Scenario("login", (Request("POST", "/v1/tokens", {"Content-Type": "application/json"}, json.dumps(
            {"account": a.caller_email, "secret": PASSWORD}).encode()),)),
        Scenario("create_pet", (Request("POST", "/v1/pets", body, b'{"name": "Newcomer", "species": "cat"}'),)),
        Scenario("patch_pet", tuple(Request("PATCH", f"/v1/pets/{i}", body, json.dumps(
            {"breed": f"mix {i % 7}"}).encode()) for i in a.pet_ids[50:150])),
    ]
    return out


def _warm_up(base: str, scenario: Scenario, args: argparse.Namespace) -> None:
    """An unmeasured run, then SETTLE seconds: wrk stops without waiting for the answers in flight, which the server
    still works on. Logins measured at once met the warm-up's last ones in the password pool's bounded queue, and a
    few now and then were not 2xx (that queue's answer when full is 503)."""
    engines.run_wrk(base, scenario, seconds=args.warmup, connections=args.connections, threads=1)
    time.sleep(SETTLE)


def _measure(sizes: list[int], server_url: str, args: argparse.Namespace, stack: contextlib.ExitStack,
             log_dir: Path, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Seed a database and start a server per size, then run each request kind against every size in turn (1k,
    100k, 1M, then the next kind): the machine's load at a moment weighs on every column alike."""
    from tests.processes import ServerProcess, server_env

    targets = []
    for pets in sizes:
        url, seeded = _prepare(server_url, f"pet_api_growth_{pets}", pets, args.records_per_pet)
        say(f"{pets:>9,} pets: seeded in {seeded:.0f} s")
        # Login throttling counts attempts in flight: 16 connections logging in from one address would be 429s.
        env = server_env(url, PET_API_LOG_LEVEL="WARNING", PET_API_DB_STATEMENT_TIMEOUT="30",
                         PET_API_LOGIN_MAX_FAILURES="100000", PET_API_LOGIN_MAX_FAILURES_PER_ADDRESS="100000")
        server = stack.enter_context(ServerProcess(log_dir / f"server-{pets}.log", env, workers=1))
        base = f"http://127.0.0.1:{server.port}"
        chosen = {s.name: s for s in scenarios(url, pets, _actors(base, url, pets))
                  if not args.only or s.name in args.only}
        targets.append((base, chosen, {"pets": pets, "seed_seconds": round(seeded, 1), "scenarios": {}}))
    for name in targets[0][1]:
        for base, chosen, results in targets:
            scenario = chosen[name]
            _warm_up(base, scenario, args)
            r = engines.run_wrk(base, scenario, seconds=args.duration, connections=args.connections, threads=1)
            results["scenarios"][name] = r.as_dict()
            say(f"  {name:26} {results['pets']:>9,} {r.rps:8.0f} req/s  p50 {r.p50_ms:8.2f} ms  p99 {r.p99_ms:8.2f} ms"
                + (f"  non-2xx {r.non_2xx} errors {r.errors}" if r.non_2xx or r.errors else ""))
    return [results for _, _, results in targets]


CLUSTER_KINDS = ("get_pet", "list_first", "list_sort_name", "records_5000", "reminders_200_pets", "sync_old_cursor",
                 "create_pet", "patch_pet")


def _causal_cost(cluster: Any, database: str, reads: int = 2000) -> dict[str, Any]:
    """Point reads on node 2 while node 1 takes a steady stream of updates, with wsrep_sync_wait 0 (may miss a
    write committed elsewhere) and 1 (what pet-api sets: waits until the node applied every earlier write)."""
    import statistics
    import threading

    from tests.mariadb_server import connect_server

    stop = threading.Event()

    def write() -> None:
        conn = connect_server(cluster.server_url(1))
        conn.select_db(database)
        with conn.cursor() as cur:
            i = 0
            while not stop.is_set():
                i += 1
                cur.execute("UPDATE pets SET version = version + 1 WHERE id = %s", (1 + i % 1000,))
        conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    out: dict[str, Any] = {}
    try:
        conn = connect_server(cluster.server_url(2))
        conn.select_db(database)
        with conn.cursor() as cur:
            for wait in (0, 1, 0, 1):  # twice each, interleaved: the load changes over time
                cur.execute(f"SET SESSION wsrep_sync_wait = {wait}")
                took = []
                for i in range(reads // 2):
                    began = time.perf_counter()
                    cur.execute("SELECT version FROM pets WHERE id = %s", (1 + i % 1000,))
                    cur.fetchall()
                    took.append((time.perf_counter() - began) * 1000)
                out.setdefault(f"sync_wait={wait}", []).extend(took)
        conn.close()
    finally:
        stop.set()
        writer.join()
    return {k: {"p50_ms": round(statistics.median(v), 3), "p99_ms": round(sorted(v)[int(len(v) * 0.99)], 3),
                "reads": len(v)} for k, v in out.items()}


def cluster_main(args: argparse.Namespace, say: Callable[[str], None], work: Path) -> dict[str, Any]:
    """The same requests on one plain MariaDB and on the 3-node Galera cluster of tests/galera.py (pet-api on the
    multi-host URL with db_read_from=any: reads spread over the nodes, writes to one), each seeded alike; then
    what causal reads (wsrep_sync_wait=1) cost on a node while another takes writes."""
    from tests.conftest import migrate_database
    from tests.galera import GaleraCluster
    from tests.mariadb_server import PrivateMariaDB
    from tests.processes import ServerProcess, server_env

    pets, name = args.cluster_pets, "pet_api_growth_cluster"
    results: dict[str, Any] = {"pets": pets, "workers": 2, "targets": {}}
    with contextlib.ExitStack() as stack:
        plain = PrivateMariaDB(work / "plain").start()
        stack.callback(plain.remove_datadir)
        cluster = GaleraCluster(size=3).start()
        stack.callback(cluster.stop)
        plain_url, _ = _prepare(plain.url, name, pets, 2)
        node1 = cluster.create_database(name)
        asyncio.run(migrate_database(cluster.multi_host_url(name)))
        conn = _sql(node1)
        try:
            seed(conn, pets, records_per_pet=2)
        finally:
            conn.close()
        cluster.wait_synced(120)
        say(f"cluster and plain server seeded with {pets:,} pets")
        targets = []
        for label, url, sql_url, extra in (("one MariaDB", plain_url, plain_url, {}),
                                           ("Galera x3, reads from any", cluster.multi_host_url(name), node1,
                                            {"PET_API_DB_READ_FROM": "any"})):
            env = server_env(url, PET_API_LOG_LEVEL="WARNING", PET_API_DB_STATEMENT_TIMEOUT="30",
                             PET_API_LOGIN_MAX_FAILURES="100000", PET_API_LOGIN_MAX_FAILURES_PER_ADDRESS="100000",
                             **extra)
            server = stack.enter_context(ServerProcess(work / f"server-{len(targets)}.log", env, workers=2))
            base = f"http://127.0.0.1:{server.port}"
            chosen = {s.name: s for s in scenarios(sql_url, pets, _actors(base, sql_url, pets))
                      if s.name in CLUSTER_KINDS}
            targets.append((label, base, chosen))
            results["targets"][label] = {}
        cluster.wait_synced(120)
        for kind in CLUSTER_KINDS:
            for label, base, chosen in targets:
                _warm_up(base, chosen[kind], args)
                r = engines.run_wrk(base, chosen[kind], seconds=args.duration, connections=args.connections,
                                    threads=1)
                results["targets"][label][kind] = r.as_dict()
                say(f"  {kind:20} {label:26} {r.rps:8.0f} req/s  p50 {r.p50_ms:8.2f} ms  p99 {r.p99_ms:8.2f} ms"
                    + (f"  non-2xx {r.non_2xx} errors {r.errors}" if r.non_2xx or r.errors else ""))
        results["causal_reads"] = _causal_cost(cluster, name)
        say(f"  causal reads on node 2 under writes on node 1: {results['causal_reads']}")
    return results


def cluster_table(results: dict[str, Any]) -> str:
    labels = list(results["targets"])
    lines = ["| request | " + " | ".join(f"req/s {x} | p99 ms {x}" for x in labels) + " |",
             "|---|" + "---|---|" * len(labels)]
    for kind in CLUSTER_KINDS:
        got = [results["targets"][x].get(kind) for x in labels]
        if all(got):
            lines.append(f"| {kind} | " + " | ".join(f"{g['rps']:.0f} | {g['p99_ms']:.1f}" for g in got) + " |")
    return "\n".join(lines)


def table(runs: list[dict[str, Any]]) -> str:
    """The cost-growth table (Markdown): p50 and p99 per size, req/s, the largest over the smallest p50."""
    sizes = [r["pets"] for r in runs]
    names = list(runs[0]["scenarios"])
    head = ("| request | " + " | ".join(f"p50 ms {s:,}" for s in sizes) + " | "
            + " | ".join(f"p99 ms {s:,}" for s in sizes) + " | " + " | ".join(f"req/s {s:,}" for s in sizes)
            + f" | p50 {sizes[-1]:,} / {sizes[0]:,} |")
    lines = [head, "|" + "---|" * (1 + 3 * len(sizes) + 1)]
    for name in names:
        got = [r["scenarios"].get(name) for r in runs]
        if any(g is None for g in got):
            continue
        ratio = got[-1]["p50_ms"] / got[0]["p50_ms"] if got[0]["p50_ms"] else float("nan")
        verdict = f"{ratio:.2f}" + ("" if ratio <= BOUND else " (grows: see below)" if name in GROWS else " **over**")
        lines.append(f"| {name} | " + " | ".join(f"{g['p50_ms']:.2f}" for g in got) + " | "
                     + " | ".join(f"{g['p99_ms']:.2f}" for g in got) + " | "
                     + " | ".join(f"{g['rps']:.0f}" for g in got) + f" | {verdict} |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench growth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,100000,1000000", help="comma-separated pet counts")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per request kind (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each (default 1)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--records-per-pet", type=int, default=10)
    p.add_argument("--server-url", help="an existing MariaDB (mysql://root:@127.0.0.1:3306); default: a throwaway one")
    p.add_argument("--only", type=lambda s: set(s.split(",")), default=set(), help="only these request kinds")
    p.add_argument("--cluster", action="store_true",
                   help="instead: the same requests on one MariaDB and on a 3-node Galera cluster (needs root)")
    p.add_argument("--cluster-pets", type=int, default=20000, help="pets seeded for --cluster (default 20,000)")
    p.add_argument("--json", metavar="FILE", help="where to write the results (default bench/results/growth-*.json)")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not engines.have_wrk():
        print("bench growth: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {text}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="pet-api-growth-"))
    if args.cluster:
        try:
            found = cluster_main(args, say, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        path = Path(args.json) if args.json else RESULTS / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(found, indent=1))
        print()
        print(cluster_table(found))
        print(f"\ncausal reads: {found['causal_reads']}\nwritten {path}")
        return 0
    private = None
    try:
        server_url = args.server_url
        if server_url is None:
            from tests.mariadb_server import PrivateMariaDB

            private = PrivateMariaDB(work / "mariadb", extra_args=[
                "--innodb-buffer-pool-size=4G", "--innodb-log-file-size=512M", "--max-connections=300"]).start()
            server_url = private.url
        with contextlib.ExitStack() as stack:
            runs = _measure(sizes, server_url, args, stack, work, say)
    finally:
        if private is not None:
            private.remove_datadir()
    out = {"sizes": sizes, "duration": args.duration, "connections": args.connections, "cpus": os.cpu_count(),
           "total_seconds": round(time.monotonic() - started), "runs": runs}
    path = Path(args.json) if args.json else RESULTS / f"growth-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print()
    print(table(runs))
    print()
    for name, why in GROWS.items():
        print(f"- {name}: {why}")
    print(f"\nwritten {path}; {out['total_seconds']} s in all")
    shutil.rmtree(work, ignore_errors=True)
    return 0

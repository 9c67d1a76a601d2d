"""What a request costs as the data grows: seed 1,000 then 100,000 then 1,000,000 pets (bench/seed.py: skewed
owners, ~10 records per pet, shares, photos, a change log), run one pet-api worker on each, and measure with wrk
the p50/p99 and req/s of the same requests at every size; print a table and write JSON.

    python -m bench growth --sizes 1000,100000,1000000 [--duration 5] [--connections 16]

Every size is at least 20 pets (MIN_PETS: the caller is caretaker of 20 seeded pets).

The database is a throwaway MariaDB (tests/mariadb_server.py) with a 4 GB buffer pool, started and removed by the
run, unless --server-url names one (databases `pet_api_growth_<size>` are dropped and recreated there). Every
size gets its database and server first; then each request kind runs against every size in turn, so the
machine's load at a moment weighs on all the columns alike (compare columns within a run). The server runs
the test profile (cheaper argon2id, so `login` measures the request, not the hash) with one worker and WARNING
logs. The callers are the same at every size, so what changes between columns is everyone else's data:
- `caller` owns 200 pets (one of them with 5,000 records, the others 10 each), is caretaker of 20 shared ones,
  and has ~400 open due items; its sync cursor was taken before "a day" of the deployment's changes (1 per 100
  pets) and its own;
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
from urllib.parse import urlsplit

import pymysql

from bench import cli, engines
from bench.scenarios import Request, Scenario, call
from bench.seed import seed

PROG = "python -m bench growth"
PASSWORD = "growth-bench-password"  # noqa: S105 - a throwaway account on a throwaway database
CALLER_PETS = 200
CALLER_PET_RECORDS = 10  # records on each of the caller's pets
BIG_PET_RECORDS = 5000  # records on the caller's first pet, those 10 included
CARETAKER_OF = 20  # seeded pets the caller is caretaker of, spread over the ids
MIN_PETS = CARETAKER_OF  # fewer seeded pets, and the caller's caretaker ids reach into its own pets
SETTLE = 1.0  # seconds between a warm-up and its measured run
BOUND = 1.5  # p50 at the largest size over p50 at the smallest, at most
RESULTS = Path(__file__).resolve().parent / "results"
# The rows allowed to grow, and why (the README's table repeats these).
GROWS = {
    "admin_filter_total": "counts every matching pet (include_total=true): the answer's total is the deployment",
    "admin_q": "a substring of any name in the whole deployment: no B-tree index serves LIKE '%x%'; a common one "
               "(measured: 'bel') finds its page early in id order, a rare or absent one reads every pet",
}
# The request kinds of scenarios(), in its order (--only is checked against them before anything is seeded).
KINDS = ("get_pet", "list_first", "list_deep_cursor", "list_sort_desc_id", "list_sort_name", "list_sort_desc_name",
         "list_sort_created_at", "list_sort_desc_created_at", "list_species", "list_status", "list_role", "list_q",
         "admin_first", "admin_deep_cursor", "admin_deep_name", "admin_filter", "admin_filter_total", "admin_q",
         "records_5000", "records_deep_cursor", "reminders_200_pets", "sync_old_cursor", "login", "create_pet",
         "patch_pet")


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
            cur.execute("INSERT INTO pet_members (pet_id, user_id, role, since) SELECT seq * %s, %s, 'caretaker',"  # noqa: S608
                        f" NOW(6) FROM seq_1_to_{CARETAKER_OF}", (pets // CARETAKER_OF, caller))
            base_seq = head + day
            cur.execute("INSERT INTO sync_access (pet_id, user_id, granted_seq) SELECT pet_id, user_id, %s"
                        " FROM pet_members WHERE user_id = %s", (base_seq, caller))
            cur.execute("INSERT INTO sync_changes (seq, type, object_id, pet_id, user_id, action, created_at)"
                        " SELECT %s + id - %s + 1, 'pet', id, id, owner_id, 'created', created_at FROM pets"
                        " WHERE owner_id = %s", (base_seq, first, caller))
            cur.execute("UPDATE sync_counter SET value = (SELECT MAX(seq) FROM sync_changes) WHERE name = 'seq'")
            cur.execute(
                "INSERT INTO records (pet_id, kind, date, note, due_date, completed_at, created_at, updated_at,"  # noqa: S608
                " version) SELECT p.id, ELT(1 + s.seq MOD 4, 'vaccination', 'vet_visit', 'weight', 'medication'),"
                " CURDATE() - INTERVAL s.seq * 20 DAY, NULL,"
                " IF(s.seq MOD 5 = 0, CURDATE() - INTERVAL 10 DAY + INTERVAL (p.id + s.seq) MOD 60 DAY, NULL),"
                f" NULL, NOW(6), NOW(6), 1 FROM pets p JOIN seq_1_to_{CALLER_PET_RECORDS} s WHERE p.owner_id = %s",
                (caller,))
            cur.execute(
                "INSERT INTO records (pet_id, kind, date, note, created_at, updated_at, version)"  # noqa: S608
                f" SELECT %s, 'weight', CURDATE() - INTERVAL seq DAY, NULL, NOW(6), NOW(6), 1"
                f" FROM seq_1_to_{BIG_PET_RECORDS - CALLER_PET_RECORDS}", (first,))
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
    few now and then were not 2xx (that queue's answer when full is 503). --warmup 0: neither."""
    if args.warmup > 0:
        engines.run_wrk(base, scenario, seconds=args.warmup, connections=args.connections, threads=1)
        time.sleep(SETTLE)


def _measure(sizes: list[int], server_url: str, args: argparse.Namespace, stack: contextlib.ExitStack,
             log_dir: Path, say: Callable[[str], None], runs: list[dict[str, Any]]) -> None:
    """Seed a database and start a server per size, then run each request kind against every size in turn (1k,
    100k, 1M, then the next kind): the machine's load at a moment weighs on every column alike. `runs` gets a
    size's entry once its server is up and each result as it is measured (what a Ctrl-C leaves is kept)."""
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
        runs.append(targets[-1][2])
    for name in targets[0][1]:
        for base, chosen, results in targets:
            scenario = chosen[name]
            _warm_up(base, scenario, args)
            r = engines.run_wrk(base, scenario, seconds=args.duration, connections=args.connections, threads=1)
            results["scenarios"][name] = r.as_dict()
            say(f"  {name:26} {results['pets']:>9,} {_summary(r)}")


def _summary(r: engines.Result) -> str:
    """A measured run in a progress line."""
    return (f"{r.rps:8.0f} req/s  p50 {engines.ms(r.p50_ms, '8.2f')} ms  p99 {engines.ms(r.p99_ms, '8.2f')} ms"
            + (f"  non-2xx {r.non_2xx} errors {r.errors}" if r.non_2xx or r.errors else ""))


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


def cluster_main(args: argparse.Namespace, say: Callable[[str], None], work: Path, results: dict[str, Any]) -> None:
    """The same requests on one plain MariaDB and on the 3-node Galera cluster of tests/galera.py (pet-api on the
    multi-host URL with db_read_from=any: reads spread over the nodes, writes to one), each seeded alike; then
    what causal reads (wsrep_sync_wait=1) cost on a node while another takes writes. Fills `results` as it goes."""
    from tests.conftest import migrate_database
    from tests.galera import GaleraCluster
    from tests.mariadb_server import PrivateMariaDB
    from tests.processes import ServerProcess, server_env

    pets, name = args.cluster_pets, "pet_api_growth_cluster"
    results.update({"pets": pets, "workers": 2, "targets": {}})
    with contextlib.ExitStack() as stack:
        plain = PrivateMariaDB(work / "plain")
        stack.callback(plain.remove_datadir)
        plain.start()
        cluster = GaleraCluster(size=3)
        stack.callback(cluster.stop)
        cluster.start()
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
                say(f"  {kind:20} {label:26} {_summary(r)}")
        results["causal_reads"] = _causal_cost(cluster, name)
        say(f"  causal reads on node 2 under writes on node 1: {results['causal_reads']}")


def cluster_table(results: dict[str, Any]) -> str:
    """The cluster comparison (Markdown, as README's): req/s and p99 per target."""
    labels = list(results["targets"])
    lines = ["| request | " + " | ".join(f"{x}: req/s | p99 ms" for x in labels) + " |",
             "|---|" + "--:|--:|" * len(labels)]
    for kind in CLUSTER_KINDS:
        got = [results["targets"][x].get(kind) for x in labels]
        if all(got):
            lines.append(f"| {kind} | " + " | ".join(f"{g['rps']:.0f} | {engines.ms(g['p99_ms'], '.1f')}"
                                                     for g in got) + " |")
    return "\n".join(lines)


def size_label(pets: int) -> str:
    """A size as README's tables name it: 1k, 100k, 1M (else with thousands separators)."""
    for unit, suffix in ((1_000_000, "M"), (1000, "k")):
        if pets % unit == 0:
            return f"{pets // unit}{suffix}"
    return f"{pets:,}"


def table(runs: list[dict[str, Any]]) -> str:
    """The cost-growth table (Markdown, as README's): p50 and p99 per size, req/s, the largest over the smallest
    p50 with its verdict against BOUND: "(grows)" for a row of GROWS, "**over**" for any other."""
    sizes = [size_label(r["pets"]) for r in runs]
    head = ("| request | " + " | ".join(f"p50 ms {s}" for s in sizes) + " | "
            + " | ".join(f"p99 ms {s}" for s in sizes) + " | " + " | ".join(f"req/s {s}" for s in sizes)
            + f" | p50 {sizes[-1]} / {sizes[0]} |")
    lines = [head, "|---|" + "--:|" * (3 * len(sizes) + 1)]
    for name in runs[0]["scenarios"]:
        got = [r["scenarios"].get(name) for r in runs]
        if any(g is None for g in got):
            continue
        first, last = got[0]["p50_ms"], got[-1]["p50_ms"]
        if not first or last is None:
            verdict = "-"
        else:
            ratio = last / first
            verdict = f"{ratio:.2f}" + ("" if ratio <= BOUND else " (grows)" if name in GROWS else " **over**")
        lines.append(f"| {name} | " + " | ".join(engines.ms(g["p50_ms"], ".2f") for g in got) + " | "
                     + " | ".join(engines.ms(g["p99_ms"], ".2f") for g in got) + " | "
                     + " | ".join(f"{g['rps']:.0f}" for g in got) + f" | {verdict} |")
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    """--sizes: distinct pet counts of at least MIN_PETS each, smallest first (the ratio is largest / smallest)."""
    check = cli.whole(MIN_PETS, f": the caller is caretaker of {CARETAKER_OF} seeded pets")
    sizes = [check(s.strip()) for s in text.split(",") if s.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError("no size given")
    if twice := sorted({s for s in sizes if sizes.count(s) > 1}):
        raise argparse.ArgumentTypeError(f"{', '.join(map(str, twice))} given twice")
    return sorted(sizes)


def _kinds(text: str) -> set[str]:
    """--only: request kinds of KINDS."""
    names = {s.strip() for s in text.split(",") if s.strip()}
    if not names or (unknown := sorted(names - set(KINDS))):
        raise argparse.ArgumentTypeError(f"unknown request kind {', '.join(unknown) if names else repr(text)}:"
                                         f" choose from {', '.join(KINDS)}")
    return names


def _server_url(text: str) -> str:
    """--server-url: mysql://user:password@host:port."""
    parts = urlsplit(text)
    if parts.scheme != "mysql" or not parts.hostname:
        raise argparse.ArgumentTypeError("not mysql://user:password@host:port")
    return text


def _where(server_url: str) -> str:
    """host:port of a server URL (its password stays out of messages)."""
    parts = urlsplit(server_url)
    return f"{parts.hostname}:{parts.port or 3306}"


def _parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=_sizes, default=[1000, 100_000, 1_000_000],
                   help=f"comma-separated pet counts, each at least {MIN_PETS} (default 1000,100000,1000000)")
    p.add_argument("--duration", type=cli.whole(1), default=5,
                   help="whole seconds per request kind (wrk's unit; default 5)")
    p.add_argument("--warmup", type=cli.whole(0), default=1,
                   help=f"unmeasured whole seconds before each, then a {SETTLE:g} s pause (default 1; 0: neither)")
    p.add_argument("--connections", type=cli.whole(1), default=16, help="wrk connections (default 16)")
    p.add_argument("--records-per-pet", type=cli.whole(0), default=10)
    p.add_argument("--server-url", type=_server_url,
                   help="an existing MariaDB (mysql://root:@127.0.0.1:3306); default: a throwaway one")
    p.add_argument("--only", type=_kinds, default=set(), help="only these request kinds (comma-separated)")
    p.add_argument("--cluster", action="store_true",
                   help="instead: the same requests on one MariaDB and on a 3-node Galera cluster (needs root)")
    p.add_argument("--cluster-pets", type=cli.whole(MIN_PETS), default=20000,
                   help="pets seeded for --cluster (default 20,000)")
    p.add_argument("--json", metavar="FILE", type=cli.json_file,
                   help="where to write the results (its directory must exist; default bench/results/*.json)")
    return p


def main(argv: list[str]) -> int:
    """The command; its exit code (2: refused before anything ran, 1: failed, 130: interrupted)."""
    args = _parser().parse_args(argv)
    if not engines.have_wrk():
        return cli.fail(PROG, "wrk is not installed (apt-get install wrk)", cli.BAD_ARGUMENTS)
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    found: dict[str, Any] = {}
    try:
        code = _run(args, started, runs, found)
    except KeyboardInterrupt:
        code = cli.fail(PROG, "interrupted", cli.INTERRUPTED)
    except pymysql.err.MySQLError as exc:
        code = cli.fail(PROG, f"MariaDB error {exc.args[0]}: {exc.args[-1]}", 1)
    except (engines.EngineError, RuntimeError, OSError) as exc:
        code = cli.fail(PROG, cli.first_line(exc), 1)
    return _report(args, code, started, runs, found)


def _run(args: argparse.Namespace, started: float, runs: list[dict[str, Any]], found: dict[str, Any]) -> int:
    """The growth or cluster run, in a work directory removed at the end however it ends."""
    if args.server_url:
        try:
            _sql_server(args.server_url).close()
        except pymysql.err.MySQLError as exc:
            return cli.fail(PROG, f"cannot connect to MariaDB at {_where(args.server_url)}: {exc.args[-1]}",
                            cli.BAD_ARGUMENTS)

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {text}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="pet-api-growth-"))
    try:
        if args.cluster:
            cluster_main(args, say, work, found)
        else:
            _growth(args, say, work, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _report(args: argparse.Namespace, code: int, started: float, runs: list[dict[str, Any]],
            found: dict[str, Any]) -> int:
    """Write and print what was measured, all of it or what came before a failure or a Ctrl-C; the exit code."""
    if not (any(found.get("targets", {}).values()) if args.cluster else any(r["scenarios"] for r in runs)):
        return code
    kind = "cluster" if args.cluster else "growth"
    path = args.json or RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out = found if args.cluster else {"sizes": args.sizes, "duration": args.duration,
                                      "connections": args.connections, "cpus": os.cpu_count(), "runs": runs}
    out.update(complete=code == 0, total_seconds=round(time.monotonic() - started))
    try:
        path.parent.mkdir(exist_ok=True)  # bench/results/ (an explicit --json's directory was checked)
        cli.write_json(path, out)
    except OSError as exc:
        return cli.fail(PROG, f"cannot write {path}: {exc.strerror}", 1)
    rows = cluster_table(found) if args.cluster else table(runs)
    if rows.count("\n") > 1:  # a row measured on every target (or size), not the head alone
        print()
        print(rows)
        if not args.cluster:
            print()
            for name, why in GROWS.items():
                print(f"- {name}: {why}")
    if "causal_reads" in found:
        print(f"\ncausal reads: {found['causal_reads']}")
    print(f"\nwritten {path}{'' if code == 0 else ' (what was measured before it stopped)'};"
          f" {out['total_seconds']} s in all")
    return code


def _sql_server(server_url: str) -> Any:
    from tests.mariadb_server import connect_server

    return connect_server(server_url, timeout=5)


def _growth(args: argparse.Namespace, say: Callable[[str], None], work: Path, runs: list[dict[str, Any]]) -> None:
    """The growth run on --server-url, or on a throwaway MariaDB in `work` (removed at the end)."""
    server_url = args.server_url
    private = None
    if server_url is None:
        from tests.mariadb_server import PrivateMariaDB

        private = PrivateMariaDB(work / "mariadb", extra_args=[
            "--innodb-buffer-pool-size=4G", "--innodb-log-file-size=512M", "--max-connections=300"])
    try:
        if private is not None:
            server_url = private.start().url
        with contextlib.ExitStack() as stack:
            _measure(args.sizes, server_url, args, stack, work, say, runs)
    finally:
        if private is not None:
            private.remove_datadir()

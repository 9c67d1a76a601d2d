"""The session's private 3-node Galera cluster (tests/galera.py), started once for tests/cluster/, and pet-api
instances on it: apps built by the factory in this process, each on a multi-host URL of its own node order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from server import make_app
from tests.conftest import migrate_database, run_async
from tests.conftest import test_config as profile_config
from tests.factories import PASSWORD, Api, serving, unique_email
from tests.galera import DATABASE, GaleraCluster

# Timeouts chosen against the shipped eviction settings (deploy/galera/README.md): commits on the healthy
# nodes wait up to ~3.5 s while a failed node is evicted, so a statement may take that long without failing.
CLUSTER_CONFIG: dict[str, Any] = {"db_connect_timeout": 1.0, "db_acquire_timeout": 2.0, "db_statement_timeout": 5.0,
                                  "db_health_interval": 1.0}
# The longest a request may take: waiting for a connection, opening it, then a transaction of a few statements
# each bounded by the statement timeout (a commit stalled by an eviction is one of them).
REQUEST_BOUND = CLUSTER_CONFIG["db_acquire_timeout"] + CLUSTER_CONFIG["db_connect_timeout"] + 2 * CLUSTER_CONFIG[
    "db_statement_timeout"]


@pytest.fixture(scope="session")
def galera_cluster() -> Iterator[GaleraCluster]:
    """A started 3-node cluster from deploy/galera/galera.cnf with a migrated DATABASE; killed at the end."""
    with GaleraCluster() as cluster:
        cluster.create_database(DATABASE)
        run_async(migrate_database(cluster.multi_host_url(DATABASE)))
        yield cluster


@pytest.fixture
def galera(galera_cluster: GaleraCluster) -> Iterator[GaleraCluster]:
    """The session's cluster with every node up and Synced, before and after the test."""
    galera_cluster.heal()
    yield galera_cluster
    galera_cluster.heal()


def node_order_url(cluster: GaleraCluster, first: int) -> str:
    """The multi-host URL listing node ``first`` first, then the others in order (its writer while ready)."""
    order = [first, *(i for i in range(1, len(cluster.nodes) + 1) if i != first)]
    hosts = ",".join(cluster.server_url(i).split("@", 1)[1] for i in order)
    return f"mysql://root:@{hosts}/{DATABASE}"


@contextlib.asynccontextmanager
async def instances(cluster: GaleraCluster, firsts: Sequence[int], **overrides: Any) -> AsyncIterator[list[Api]]:
    """One started pet-api instance per entry of ``firsts`` (the node listed first in its URL), served on free
    ports of this loop; a JSON client for each. Shut down at the end."""
    async with contextlib.AsyncExitStack() as stack:
        client = AsyncHTTPClient(force_instance=True, max_clients=100)
        stack.callback(client.close)
        apis = []
        for first in firsts:
            app = make_app(profile_config(database_url=node_order_url(cluster, first), **CLUSTER_CONFIG, **overrides))
            await app.startup()
            stack.push_async_callback(app.shutdown)
            apis.append(Api(client, await stack.enter_async_context(serving(app))))
        yield apis


async def owner_token(api: Api) -> tuple[int, str]:
    """A new user registered and logged in through this instance: (user id, token)."""
    email = unique_email("cluster")
    created = await api.post("/v1/users", json={"email": email, "password": PASSWORD, "nickname": "c"})
    assert created.status == 201, created.body
    return created.body["data"]["id"], await api.token(email)

"""The session's private 3-node Galera cluster (tests/galera.py), started once for tests/cluster/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.galera import DATABASE, GaleraCluster


@pytest.fixture(scope="session")
def galera_cluster() -> Iterator[GaleraCluster]:
    """A started 3-node cluster from deploy/galera/galera.cnf with an empty DATABASE; killed at the end."""
    with GaleraCluster() as cluster:
        cluster.create_database(DATABASE)
        yield cluster


@pytest.fixture
def galera(galera_cluster: GaleraCluster) -> Iterator[GaleraCluster]:
    """The session's cluster with every node up and Synced, before and after the test."""
    galera_cluster.heal()
    yield galera_cluster
    galera_cluster.heal()

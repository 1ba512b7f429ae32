"""A private PostgreSQL server for tests and benches: initdb in a temporary folder,
a free loopback port, its unix socket in that folder, stopped at the end.

The launcher is the product's (gateway/cluster_local.py: `jifang demo --cluster` and
bench/cluster.py start the same one); this module keeps the tests' names for it.

`PostgresServer.url(db)` gives a postgresql:// URL over TCP on 127.0.0.1 (what a
gateway config holds); `superuser_url` connects as the cluster's superuser, which
tests use to create the gateway's role and database, and to play the attacker.
"""
from gateway.cluster_local import (GATEWAY_ROLE, MISSING, OWNER_ROLE, SUPERUSER,  # noqa: F401
                                   PostgresServer, postgres_bindir, running_postgres)

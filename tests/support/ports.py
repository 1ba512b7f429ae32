"""Free loopback ports for test servers (never a service's standard port): the
product's own helpers (gateway/cluster_local.py), which the demo and the benches use too."""
from gateway.cluster_local import free_port, free_tcp_udp_port  # noqa: F401

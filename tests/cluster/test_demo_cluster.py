"""`jifang demo --cluster` end to end, short: its own PostgreSQL and 3-node NATS
cluster, two gateway node processes, firmware panels on the MicroPython unix port
with both nodes as receivers, a small JT/T 808 fleet; node a is killed with
SIGKILL halfway and restarted. The demo's own count (what the devices had ACKed
against the cluster's log and the 110 center's) must come out "0 lost, 0
duplicates", both chains must verify, and panels of node a must have moved to b."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import cluster_local

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_demo_cluster_kills_a_node_and_counts_nothing_lost(tmp_path):
    if cluster_local.postgres_bindir() is None:
        pytest.skip(cluster_local.MISSING)
    # 4 panels at a 50 ms poll and 2 terminals: the demo's shape at a cost two
    # shared cores can carry beside the rest of the suite.
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "demo", "--cluster", "--duration", "40",
                           "--panels", "4", "--poll-ms", "50", "--fleet", "2", "--mean-gap", "3", "--seed", "7",
                           "--data-dir", str(tmp_path / "demo")],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    out = proc.stdout
    print(out[-4000:], proc.stderr[-2000:])
    assert proc.returncode == 0
    assert "--- kill -9 node a" in out and "--- node a restarted" in out
    assert re.search(r"--- panel \d+ failed over to node b", out)
    assert re.search(r"log verify cluster log \(PostgreSQL\) OK, \d+ rows intact", out)
    assert re.search(r"log verify 110 +OK, \d+ rows intact", out)
    acked = re.search(r"devices ACKed (\d+) events \((\d+) for 110\)", out)
    assert acked and int(acked.group(1)) > 0 and int(acked.group(2)) > 0
    positions = re.search(r"positions: (\d+) ACKed, (\d+) stored", out)
    assert positions and int(positions.group(1)) > 0
    assert out.rstrip().endswith("0 lost, 0 duplicates")


def test_demo_cluster_says_what_to_install_without_the_servers(tmp_path, monkeypatch, capsys):
    from gateway import demo_cluster
    from gateway.cli import command_parser
    monkeypatch.setattr(cluster_local, "postgres_bindir", lambda: None)

    def no_nats():
        raise FileNotFoundError("nats-server is not installed: " + cluster_local.INSTALL_HINT)
    monkeypatch.setattr(cluster_local, "nats_server_binary", no_nats)
    _, parser = command_parser("demo")
    args = parser.parse_args(["--cluster", "--simulated-panels", "--data-dir", str(tmp_path)])
    assert demo_cluster.run(args) == 2
    err = capsys.readouterr().err
    assert "postgresql" in err and "nats-server" in err and "tools/install-system-deps.sh" in err

#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing.
# Tests start their own broker on a free port; they only need the binaries here.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
# cluster tests start their own 3-node NATS JetStream cluster (tests/support/nats.py)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)   # console browser tests (Playwright drives it)
# Cluster tests start their own PostgreSQL server (initdb in a temporary folder, a free port).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing Debian packages: ${need[*]} (no apt-get here: install them with your package manager)" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"

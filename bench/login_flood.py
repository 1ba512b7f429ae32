"""DC-09 alarm ACK latency with and without a console login flood (issue 11 §1).

A gateway process (`python -m gateway.service`: DC-09 receiver + console), an
attacker process with --clients concurrent wrong logins in a loop, each from its
own loopback address, and one panel here sending encrypted ADM-CID alarms one
after the other on one TCP connection, timing send -> ACK. Each console mode is
measured twice, quiet then flooded:

    child   the console in its own process (the default, console.process = "child")
    inline  the console in the gateway's event loop (console.process = "inline");
            argon2 still runs in its bounded pool off the loop

Run:  .venv/bin/python bench/login_flood.py [--alarms 300] [--clients 100] [--modes child,inline]
The harness is tests/support/login_flood.py (tests/console/test_login_flood.py
asserts p99 < 100 ms for the child mode). Before issue 11, argon2 ran on the
gateway's loop: 100 concurrent wrong logins held one ACK for 10.4 s.
"""
import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.console.support import PASSWORD, Client                                      # noqa: E402
from tests.support.login_flood import AlarmPanel, Flood, GatewayProcess, percentile     # noqa: E402


async def measure(mode, alarms, clients):
    with tempfile.TemporaryDirectory(prefix="login-flood-") as workdir:
        async with GatewayProcess(workdir, process=mode) as gw:
            admin = Client(gw.console_url, local_address="127.0.0.9")
            try:
                assert (await admin.login("ada", PASSWORD))[0] == 200
                before = (await admin.get("api/logins"))[1]["pool"]
                async with AlarmPanel(gw.receiver_port) as panel:
                    await panel.alarms(20)                      # warm-up: connection, caches
                    panel.latencies.clear()
                    await panel.alarms(alarms)
                    quiet = list(panel.latencies)
                    panel.latencies.clear()
                    async with Flood(gw.console_url, clients=clients) as flood:
                        await panel.alarms(alarms)
                    flooded = list(panel.latencies)
                after = (await admin.get("api/logins"))[1]["pool"]
            finally:
                await admin.close()
    return quiet, flooded, flood.result, after["verifications"] - before["verifications"], after["refused_busy"]


async def main(args):
    print("DC-09 ACK latency, %d alarms per column, flood = %d concurrent wrong-login clients at %d addresses"
          % (args.alarms, args.clients, args.clients))
    print("%-8s %12s %12s %12s %12s   %s" % ("console", "quiet p50", "quiet p99", "flood p50", "flood p99",
                                            "flood answers / argon2 runs / refused busy"))
    for mode in args.modes.split(","):
        quiet, flooded, answers, verified, busy = await measure(mode, args.alarms, args.clients)
        print("%-8s %9.1f ms %9.1f ms %9.1f ms %9.1f ms   %s / %d / %d"
              % (mode, percentile(quiet, 50) * 1e3, percentile(quiet, 99) * 1e3,
                 percentile(flooded, 50) * 1e3, percentile(flooded, 99) * 1e3, answers, verified, busy), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=300)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--modes", default="child,inline")
    asyncio.run(main(parser.parse_args()))

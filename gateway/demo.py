"""`jifang demo`: the whole alarm path on one machine, no external services.

    24 panels of the Lakeside Garden compound (encrypted DC-09, TCP and UDP)
      -> alarm-service-center gateway   (examples/alarm-service-center.toml)
      -> 110-center gateway             (examples/110-center.toml)
      -> live feed of what the 110 center receives, printed here

By default every panel is the real firmware: one MicroPython process (unix port,
heap 128 KB) per panel, configured as a flat's panel (two partitions, zones, users
with PINs, short delays), and a resident per panel who arms, disarms, opens doors
and windows, presses the panic button, pulls the mains... (hil/compound.py): every
report is the firmware's own. `--simulated-panels` runs the Python simulator
(gateway/panelsim.py) instead, which decides events itself.

Both gateways run their example configs unchanged except for what must differ on
this machine: free loopback ports instead of the fixed ones, a data directory of
their own, and a short reporting interval so supervision shows within a minute
(one panel's line is cut after 20 s and restored after 60 s, earlier when
--duration is shorter). Stops on Ctrl-C, or after --duration seconds, stops every
panel process, then verifies both hash-chained logs.

`jifang demo --cluster` runs the compound against two gateway nodes on a private
NATS JetStream cluster and PostgreSQL instead, and kills one: gateway/demo_cluster.py.
"""
import asyncio
import logging
import signal
import sys
import tempfile
import time
import tomllib
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_REPORTING_INTERVAL = 20
CUT_LINE_AFTER, RESTORE_LINE_AFTER = 20, 60
STATUS_EVERY = 15
# Each firmware panel polls its inputs every poll_ms, 10 ms as on a board: 24 panels
# took 42 % of one core on a 2-core machine (27 % at 50 ms). --poll-ms raises it on a
# smaller machine; the debounce follows (hil/compound.py).
DEMO_POLL_MS = 10


def line_cut_times(duration):
    """(cut, restore) seconds: 20 and 60, or earlier so that a run of --duration
    shows the 350 and its restore; None when the run is too short for it."""
    if duration is None or duration >= RESTORE_LINE_AFTER + 10:
        return CUT_LINE_AFTER, RESTORE_LINE_AFTER
    restore = duration - 10
    cut = min(CUT_LINE_AFTER, restore - DEMO_REPORTING_INTERVAL - 10)
    if cut < 5:
        return None
    return cut, restore


def status_line(asc, center, panels):
    outbox = asc.forwarders[0].outbox
    return ("--- status: panels have %d events ACKed, %d waiting in their buffers; center recorded %d, "
            "%d queued for 110; 110 recorded %d" % (
                sum(len(p.acked) for p in panels), sum(len(p.buffer) for p in panels),
                asc.metrics.total("jifang_events_in_total"), outbox.depth(),
                center.metrics.total("jifang_events_in_total")))


def add_arguments(parser):
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--panels", type=int, default=24, help="how many of the compound's panels to simulate (20-24)")
    parser.add_argument("--data-dir", default=None, help="keep the stores here (default: a fresh temporary folder)")
    parser.add_argument("--mean-gap", type=float, default=8.0, help="mean seconds between one panel's events")
    parser.add_argument("--seed", type=int, default=None, help="seed for the simulated traffic")
    parser.add_argument("--simulated-panels", action="store_true",
                        help="run the Python panel simulator instead of the firmware (MicroPython processes)")
    parser.add_argument("--poll-ms", type=int, default=DEMO_POLL_MS,
                        help="firmware panels' input polling period (default %(default)s ms)")
    parser.add_argument("--cluster", action="store_true",
                        help="two gateway nodes on a local 3-node NATS cluster and PostgreSQL; one is killed halfway"
                             " (gateway/demo_cluster.py)")
    from gateway import demo_cluster
    demo_cluster.add_arguments(parser)


def run(args):
    if args.cluster:
        from gateway import demo_cluster
        return demo_cluster.run(args)
    if not 1 <= args.panels <= 24:
        print("--panels must be 1..24 (the example compound has 24)", file=sys.stderr)
        return 2
    if not args.simulated_panels:
        from hil import micropython
        try:
            micropython.micropython_binary(), micropython.mpy_cross_binary()
        except FileNotFoundError as exc:
            print("%s\n(or run the Python panel simulator: jifang demo --simulated-panels)" % exc, file=sys.stderr)
            return 2
        if args.poll_ms < 1:
            print("--poll-ms must be >= 1", file=sys.stderr)
            return 2
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="jifang-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(demo(args, data_dir))


def demo_configs(data_dir, ports):
    """The two example configs, moved onto this machine's free ports and data dir."""
    from gateway import config as config_module
    with open(EXAMPLES / "alarm-service-center.toml", "rb") as f:
        asc = tomllib.load(f)
    with open(EXAMPLES / "110-center.toml", "rb") as f:
        center = tomllib.load(f)
    asc["store"]["path"] = str(data_dir / "asc-events.db")
    asc["receiver"]["listen"] = "127.0.0.1:%d" % ports["asc"]
    asc["http"]["listen"] = "127.0.0.1:%d" % ports["asc_http"]
    asc["console"]["listen"] = "127.0.0.1:%d" % ports["console"]
    asc["forwarders"][0]["receivers"] = ["127.0.0.1:%d" % ports["110"]]
    asc["forwarders"][0]["retry_max_seconds"] = 5
    for device in asc["devices"]:
        device["reporting_interval_seconds"] = DEMO_REPORTING_INTERVAL
    center["store"]["path"] = str(data_dir / "110-events.db")
    center["receiver"]["listen"] = "127.0.0.1:%d" % ports["110"]
    center["http"]["listen"] = "127.0.0.1:%d" % ports["110_http"]
    replace_example_secrets([asc, center])
    return (config_module.from_dict(asc, data_dir, "alarm-service-center.toml (demo)"),
            config_module.from_dict(center, data_dir, "110-center.toml (demo)"))


async def demo_operator(asc_config):
    """An operator account in the center's console, with a fresh password for this run."""
    import secrets
    from gateway.console.api_users import create_account
    from gateway.console.db import AsyncConsoleDB
    from gateway.console.serve import console_db_path
    password = secrets.token_urlsafe(9)
    db = AsyncConsoleDB(console_db_path(asc_config, asc_config.console))
    await db.open()
    try:
        if await db.user("operator") is None:
            await create_account(db, "operator", "operator", password, "Demo operator", int(time.time() * 1000))
        else:
            password = "(unchanged: this data dir already has the account)"
    finally:
        await db.close()
    return password


def replace_example_secrets(documents):
    """Every secret the examples write, replaced by a fresh one of the same shape
    (the same example value -> the same new value in every document, so the
    peering key still matches at both ends). The examples' secrets are public and
    a gateway refuses to start with them (gateway.config.refuse_example_secrets);
    the demo's panels get the generated keys from the config they are built from."""
    import secrets
    import string
    from gateway.config import PLACEHOLDER_MARK, example_secrets, is_secret_name

    examples, fresh = example_secrets(), {}

    def new_value(name, value):
        if name == "key_hex" or name.endswith("_key_hex"):
            return secrets.token_hex(len(value) // 2).upper()
        if name == "key_text" or name.endswith("_key_text"):
            return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in value)
        return secrets.token_hex(32)

    def walk(node):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in list(items):
            if isinstance(v, str) and isinstance(k, str) and is_secret_name(k):
                normal = v.strip().upper()
                if normal in examples or PLACEHOLDER_MARK in v.lower():
                    node[k] = fresh.setdefault(normal, new_value(k, v))
            else:
                walk(v)

    for document in documents:
        walk(document)


def free_ports():
    import socket
    ports = {}
    for name in ("asc", "110", "asc_http", "110_http", "console"):
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            try:        # DC-09 listens on TCP and UDP: the port must be free for both
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        ports[name] = port
    return ports


async def demo(args, data_dir):
    from gateway import logs
    from gateway.app import Gateway
    from gateway.store import verify

    ports = free_ports()
    asc_config, center_config = demo_configs(data_dir, ports)
    log_file = open(data_dir / "gateways.log", "a", encoding="utf-8")
    log_handler = logs.setup("INFO", asc_config.secrets + center_config.secrets, "demo", stream=log_file)

    accounts = [a for a in asc_config.devices if a != "*"][:args.panels]
    # Only the panels that run stay in the registry: an account with no panel behind
    # it would (rightly) raise a communication trouble at 110 after a minute.
    asc_config.devices = {a: d for a, d in asc_config.devices.items() if a == "*" or a in accounts}

    out = sys.stdout
    center = Gateway(center_config, console_stream=out, console_prefix="110 >> ")
    asc = Gateway(asc_config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    receiver = ("127.0.0.1", ports["asc"])
    if args.simulated_panels:
        from gateway.panelsim import Compound, Panel
        panels = [Panel(a, asc_config.devices[a].key, receiver,
                        transport="udp" if i % 4 == 3 else "tcp", link_test_interval=DEMO_REPORTING_INTERVAL / 2)
                  for i, a in enumerate(accounts)]
        compound = Compound(panels, mean_gap=args.mean_gap, seed=args.seed)
        kind = "simulated panels"
    else:
        compound, panels = firmware_compound(args, asc_config, accounts, receiver, data_dir)
        kind = "firmware panels (MicroPython, %d ms poll)" % args.poll_ms

    print("jifang demo: %d %s -> alarm-service center (DC-09 127.0.0.1:%d, metrics http://127.0.0.1:%d/metrics)"
          % (len(panels), kind, ports["asc"], ports["asc_http"]), file=out)
    print("            -> 110 center (DC-09 127.0.0.1:%d, metrics http://127.0.0.1:%d/metrics)"
          % (ports["110"], ports["110_http"]), file=out)
    password = await demo_operator(asc_config)
    print("            operators' console http://127.0.0.1:%d/ (log in as \"operator\", password %s)"
          % (ports["console"], password), file=out)
    print("stores and logs in %s; openings/closings stay at the center, alarms and troubles go to 110." % data_dir, file=out)
    print("Ctrl-C to stop.%s\n" % (" Stopping after %g s." % args.duration if args.duration else ""), file=out)
    out.flush()

    started = time.monotonic()
    next_status = STATUS_EVERY
    cut_times = line_cut_times(args.duration)
    async with center, asc:
        try:
            compound.start()
            cut = panels[-1]
            while not stop.is_set():
                elapsed = time.monotonic() - started
                if args.duration is not None and elapsed >= args.duration:
                    break
                if elapsed >= next_status:
                    next_status += STATUS_EVERY
                    print(status_line(asc, center, panels), file=out)
                if cut_times and not cut.silent and cut_times[0] <= elapsed < cut_times[1]:
                    cut.silent = True
                    print("--- demo: cutting the line of panel %s (supervision should raise 350 within %d s)"
                          % (cut.account, DEMO_REPORTING_INTERVAL), file=out)
                elif cut_times and cut.silent and elapsed >= cut_times[1]:
                    cut.silent = False
                    print("--- demo: panel %s is back on line" % cut.account, file=out)
                out.flush()
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            await compound.stop()
            # Let what the center already ACKed reach 110 before stopping (bounded).
            deadline = time.monotonic() + 5
            while asc.forwarders[0].outbox.depth() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)

    print("\nstopped after %.0f s." % (time.monotonic() - started), file=out)
    print(status_line(asc, center, panels), file=out)
    for name, path in (("center", asc_config.store_path), ("110", center_config.store_path)):
        result = verify(path)
        print("log verify %-6s %s: %s" % (name, path, "OK, %d rows intact" % result.rows if result.ok else result.problem), file=out)
    logs.teardown(log_handler)
    log_file.close()
    return 0


def firmware_compound(args, asc_config, accounts, receiver, data_dir):
    """One firmware process per account, configured as a flat's panel, its flash
    (queue, panel.state) and console log under data_dir/panels/<account>."""
    import random

    from hil.compound import FirmwareCompound, resident_panel_config
    from hil.firmware_panel import FirmwarePanel

    rnd = random.Random(args.seed)
    panels, pins = [], {}
    for i, account in enumerate(accounts):
        config, pins[account] = resident_panel_config(account, rnd, poll_ms=args.poll_ms)
        panels.append(FirmwarePanel(account, asc_config.devices[account].key, receiver,
                                    transport="udp" if i % 4 == 3 else "tcp",
                                    link_test_interval=DEMO_REPORTING_INTERVAL / 2,
                                    workdir=data_dir / "panels" / account, config=config))
    return FirmwareCompound(panels, pins, mean_gap=args.mean_gap, seed=args.seed), panels

"""Serving the console beside a running gateway.

`start_console(gateway, settings, dispatch)` is what the gateway service calls
to mount it (see docs/console.md, "Mounting"); `python -m gateway.console
--config FILE.toml` runs a gateway with its console from one TOML file whose
`[console]` table holds the console's settings, for development and demos
until the gateway service reads that table itself.
"""
import argparse
import asyncio
import signal
import sys
import tomllib
from pathlib import Path

from aiohttp import web

from gateway import netlimits
from gateway.console.app import create_app
from gateway.console.keys import NET_LISTENER
from gateway.console.settings import from_table
from gateway.console.source import EventSource


def ssl_context(settings):
    """The console's own TLS (tls_cert_file/tls_key_file), or None for plain HTTP."""
    if settings.tls_cert_file is None:
        return None
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context


async def serve_app(app, settings):
    """Run `app` on settings.listen behind netlimits' admission (totals, per
    address, a reserve for addresses an operator logged in from, accept backoff);
    returns the AppRunner, whose cleanup() also closes the listener."""
    slot = app[NET_LISTENER] = netlimits.ListenerSlot()     # set before the app is frozen
    runner = web.AppRunner(app, access_log=None)   # no access log: URLs carry search terms, nothing needs them twice
    await runner.setup()
    limits = netlimits.Limits(max_connections=settings.max_connections,
                              max_per_address=settings.max_connections_per_address,
                              reserved=settings.reserved_connections)
    slot.listener = await netlimits.serve_protocol(runner.server, *settings.listen, name="console", limits=limits,
                                                   ssl=ssl_context(settings))
    return _Runner(runner, slot.listener)


class _Runner:
    """What start_console returns for the inline console: its address, and
    cleanup() closing the listener, then the app."""

    def __init__(self, runner, listener):
        self.runner, self.listener = runner, listener
        self.addresses = [listener.address]

    async def cleanup(self):
        await self.listener.close()
        await self.runner.cleanup()


def console_db_path(gateway_config, settings):
    """Where the console keeps its records: as configured, else in the cluster's
    database (cluster mode: shared by every node's console, gateway/console/pgdb.py),
    else next to the event log."""
    return settings.db_path or gateway_config.store_url or Path(gateway_config.store_path).with_name("console.sqlite")


async def start_console(gateway, settings, dispatch=None, geofences=(), on_disposed=None):
    """Serve the console for a started gateway.app.Gateway on settings.listen;
    returns something with `addresses` (where it listens) and `cleanup()` (stops
    it): a ConsoleProcess (settings.process = "child", the default: its own
    process, see gateway/console/process.py) or the AppRunner ("inline").
    `geofences`: the fleet's (VehiclesConfig.rules.geofences), drawn on the map."""
    if settings.listen is None:
        raise ValueError("console.listen is not set: write e.g. listen = \"127.0.0.1:8480\" under [console]")
    center = getattr(gateway, "vehicle_center", None)
    if settings.process == "child":
        from gateway.console.process import ConsoleProcess
        return await ConsoleProcess(gateway.config, settings, geofences, dispatch, on_disposed,
                                    release_vehicle=center.release if center is not None else None).start()
    source = EventSource.from_gateway(gateway, geofences)
    app = create_app(source, console_db_path(gateway.config, settings), dispatch, settings, on_disposed,
                     release_vehicle=center.release if center is not None else None)
    return await serve_app(app, settings)


def load(path):
    """(gateway config, console settings, fleet geofences) from one TOML file."""
    from gateway import config as config_module
    from gateway.vehicles import config as vehicles_config
    path = Path(path)
    with open(path, "rb") as f:
        data = tomllib.load(f)
    console_table = data.pop("console", {})
    fleet = vehicles_config.from_dict(data, base_dir=path.parent, source=str(path))
    # This runner starts no vehicle servers; it only draws the fleet's geofences.
    gateway_data = {k: v for k, v in data.items() if k not in vehicles_config.SECTIONS}
    gateway_config = config_module.from_dict(gateway_data, base_dir=path.parent, source=str(path))
    return gateway_config, from_table(console_table, base_dir=path.parent, source=str(path)), fleet.rules.geofences


async def serve(gateway_config, settings, stop, geofences=()):
    """Run a gateway and its console until `stop` (an asyncio.Event) is set."""
    from gateway.app import Gateway
    async with Gateway(gateway_config) as gateway:
        runner = await start_console(gateway, settings, geofences=geofences)
        try:
            print("console on http://%s:%d/" % runner.addresses[0][:2], flush=True)
            await stop.wait()
        finally:
            await runner.cleanup()


def main(argv=None):
    from gateway import config as config_module
    from gateway import logs
    parser = argparse.ArgumentParser(prog="python -m gateway.console", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="gateway TOML file with a [console] table")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    try:
        gateway_config, settings, geofences = load(args.config)
        if settings.listen is None:
            raise config_module.ConfigError("console.listen", None, "missing", 'write listen = "127.0.0.1:8480"', args.config)
    except (config_module.ConfigError, OSError, tomllib.TOMLDecodeError) as exc:
        print(exc, file=sys.stderr)
        return 2
    logs.setup(args.log_level, gateway_config.secrets, gateway_config.name)
    asyncio.run(_serve_until_signalled(gateway_config, settings, geofences))
    return 0


async def _serve_until_signalled(gateway_config, settings, geofences):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(gateway_config, settings, stop, geofences)

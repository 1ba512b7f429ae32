"""The console's listener: TLS, admission limits, and where its records live.

Shared by the gateway's side (gateway/console/serve.py, the inline console) and the
console's own child process (gateway/console/process.py), so neither imports the other
for it.
"""
from pathlib import Path

from aiohttp import web

from gateway import netlimits
from gateway.console.keys import NET_LISTENER


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

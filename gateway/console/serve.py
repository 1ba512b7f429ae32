"""Serving the console beside a running gateway.

`start_console(gateway, settings, dispatch)` is what the gateway calls (gateway/app.py)
when its config has a `[console]` table with `listen` (see docs/console.md,
"Mounting"): in a child process by default (gateway/console/process.py), or in the
gateway's loop (`process = "inline"`). `jifang gateway --config FILE.toml` runs a
gateway with its console; `python -m gateway.console` is the same command, kept for
the scripts that name it.
"""
from gateway.console.app import create_app
# serve_app, ssl_context and console_db_path live in listen.py (the child process
# uses them too); importable from here, where the tests and the demo take them.
from gateway.console.listen import console_db_path, serve_app, ssl_context  # noqa: F401
from gateway.console.process import ConsoleProcess
from gateway.console.source import EventSource


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
        return await ConsoleProcess(gateway.config, settings, geofences, dispatch, on_disposed,
                                    release_vehicle=center.release if center is not None else None).start()
    source = EventSource.from_gateway(gateway, geofences)
    app = create_app(source, console_db_path(gateway.config, settings), dispatch, settings, on_disposed,
                     release_vehicle=center.release if center is not None else None)
    return await serve_app(app, settings)

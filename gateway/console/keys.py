"""Typed keys for what the console keeps on the aiohttp application and request."""
from aiohttp import web

CONSOLE = web.AppKey("console", object)      # the app's gateway.console.app.Console
USER = web.RequestKey("user", object)        # the logged-in user (dict) or None
REGISTERED = web.RequestKey("registered", bool)   # True once this request wrote its access-register entry
NET_LISTENER = web.AppKey("net_listener", object)  # the gateway.netlimits listener serving the app, once started

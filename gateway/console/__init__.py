"""The alarm center console: the web application operators use to receive, verify
and dispose of alarms, watch devices and vehicles, and search records.

It reads the gateway's event log (never writes it) and keeps what operators do
(takes, dispositions, dispatches, escalations, users, sessions and the access
register) in its own SQLite file. `create_app()` in app.py builds the aiohttp
application; docs/console.md describes it.
"""

"""The HTML pages and their static assets.

The console is one page (app.html + app.js) whose views are chosen by the URL
fragment (#/queue, #/alarm/12, ...), plus the login page. The app page needs a
login (a logged-out browser is sent to the login page); the assets carry no
records and are public, served from a fixed list so no path can reach a file
outside static/. Every URL in the pages is relative, so the console also works
mounted under a prefix.
"""
from aiohttp import web

from gateway.console import auth

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


def add_routes(app, static_dir):
    assets = {p.name: p for p in static_dir.iterdir() if p.suffix in CONTENT_TYPES and p.name != "app.html"}

    @auth.public
    async def login_page(request):
        return web.FileResponse(static_dir / "login.html", headers={"Content-Type": "text/html; charset=utf-8"})

    @auth.logged_in
    async def app_page(request):
        return web.FileResponse(static_dir / "app.html", headers={"Content-Type": "text/html; charset=utf-8"})

    @auth.public
    async def asset(request):
        path = assets.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPES[path.suffix] + "; charset=utf-8"})

    app.router.add_get("/", app_page, name="app_page")
    app.router.add_get("/login", login_page, name="login_page")
    app.router.add_get("/static/{name}", asset)

"""The pages under `/app/` (web/): one HTML shell for every page path, the modules, styles and
vendored scripts beside it, and `config.json` (where the REST API is). Every answer carries the
security headers a medical app should: a CSP without inline scripts, no referrer, no framing."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
# The paths the pages' router knows; each gets the same shell (web/index.html).
_PAGE = re.compile(r"^(|moderation|consults/[0-9a-fA-F-]{36})$")
_ASSET = re.compile(r"^(js|css|vendor)/[A-Za-z0-9_.-]+\.(js|css)$")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(request: web.Request, api_origin: str) -> dict[str, str]:
    socket_origin = ("wss://" if request.secure else "ws://") + request.host
    policy = "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self' blob: mediastream:",
            f"connect-src 'self' {socket_origin} {api_origin}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
        "Cache-Control": "no-cache",
    }


def add_pages(app: web.Application, public_api_url: str) -> None:
    """Route `/app/...` to web/; `public_api_url` is where the pages find the REST API."""
    api_origin = _origin(public_api_url)

    async def config(request: web.Request) -> web.Response:
        return web.json_response(
            {"api_url": public_api_url.rstrip("/")},
            headers=security_headers(request, api_origin),
        )

    async def serve(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if _PAGE.match(path):
            file = WEB_ROOT / "index.html"
        elif _ASSET.match(path):
            file = WEB_ROOT / path
        else:
            raise web.HTTPNotFound()
        if not file.is_file():
            raise web.HTTPNotFound()
        headers = security_headers(request, api_origin)
        headers["Content-Type"] = _TYPES[file.suffix] + "; charset=utf-8"
        return web.FileResponse(file, headers=headers)

    async def to_app(_: web.Request) -> web.Response:
        raise web.HTTPFound("/app/")

    app.router.add_get("/app", to_app)
    app.router.add_get("/app/config.json", config)
    app.router.add_get("/app/{path:.*}", serve)

"""The pages' serving: security headers, the shell for every page path and nothing outside web/,
the API's address in config.json, the API answering the hub's origin, and the vendored
socket.io client being exactly the pinned release."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from pawhub.settings import Settings
from tests.e2e.browser import Servers, serve_pages

VENDORED = Path(__file__).parents[1] / "web" / "vendor" / "socket.io.esm.min.js"
# socket.io-client 4.8.4, dist/socket.io.esm.min.js as npm ships it.
SOCKET_IO_SHA256 = "771c3872e7d9bf81020615fda67ef0fd2aa61fcaf1990100714a46fa2c39f8a1"


@pytest.fixture(scope="module")
async def page_servers(settings: Settings) -> AsyncIterator[Servers]:
    async for running in serve_pages(settings):
        yield running


def test_the_vendored_socket_io_client_is_the_pinned_release_with_its_licence() -> None:
    content = VENDORED.read_bytes()
    assert hashlib.sha256(content).hexdigest() == SOCKET_IO_SHA256
    assert content.startswith(b"/*!\n * Socket.IO v4.8.4\n") and b"MIT License" in content[:200]


async def test_pages_carry_security_headers_and_stay_inside_web(page_servers: Servers) -> None:
    async with aiohttp.ClientSession() as http:
        for path in (
            "/app/",
            "/app/moderation",
            "/app/consults/8f1c8a2e-5e1b-4a43-9a53-1b2c3d4e5f60",
        ):
            async with http.get(page_servers.hub_url + path) as response:
                assert response.status == 200
                assert '<script type="module" src="/app/js/main.js">' in await response.text()
                policy = response.headers["Content-Security-Policy"]
                assert "script-src 'self';" in policy and "unsafe-inline" not in policy
                assert "frame-ancestors 'none'" in policy
                assert page_servers.api_url in policy  # connect-src: the API
                assert response.headers["Referrer-Policy"] == "no-referrer"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(page_servers.hub_url + "/app/js/main.js") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/javascript")
        for outside in ("/app/../pawhub/settings.py", "/app/js/../../pyproject.toml", "/app/nope"):
            async with http.get(page_servers.hub_url + outside) as response:
                assert response.status == 404, outside
        async with http.get(page_servers.hub_url + "/app/config.json") as response:
            assert (await response.json()) == {"api_url": page_servers.api_url}


async def test_the_api_answers_the_hubs_origin_and_no_other(page_servers: Servers) -> None:
    async with aiohttp.ClientSession() as http:
        for origin, allowed in ((page_servers.hub_url, True), ("http://evil.example", False)):
            preflight = {
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            }
            async with http.options(
                page_servers.api_url + "/v1/auth/login", headers=preflight
            ) as r:
                granted = r.headers.get("Access-Control-Allow-Origin")
                assert (granted == origin) is allowed, (origin, r.status, granted)

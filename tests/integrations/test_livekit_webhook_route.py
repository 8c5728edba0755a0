"""The LiveKit webhook route on a real port, with LiveKit-signed deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import uvicorn
from litestar import Litestar
from litestar.datastructures import State

from deploy.embedded import free_port
from pawhub.settings import Settings
from rest.problems import exception_handlers
from rest.scheduling.livekit_webhooks import livekit_webhook
from tests.integrations.test_livekit import API_KEY, API_SECRET, room_finished, signed_webhook

Serve = Callable[[Settings], Awaitable[str]]


def livekit_settings(api_key: str | None = None, api_secret: str | None = None) -> Settings:
    return Settings(_env_file=None, livekit_api_key=api_key, livekit_api_secret=api_secret)  # type: ignore[call-arg]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serve the route alone, in an app with pawhub's problem+json handlers, on 127.0.0.1."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(settings: Settings) -> str:
        app = Litestar(
            route_handlers=[livekit_webhook],
            state=State({"settings": settings}),
            exception_handlers=exception_handlers,  # type: ignore[arg-type]
        )
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
        servers.append((server, asyncio.create_task(server.serve())))
        while not server.started:
            await asyncio.sleep(0.02)
        return f"http://127.0.0.1:{port}/v1/webhooks/livekit"

    yield start
    for server, task in servers:
        server.should_exit = True
        await task


async def post(url: str, body: str, authorization: str) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": authorization, "Content-Type": "application/webhook+json"}
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as reply:
        return reply.status, await reply.json(content_type=None)


async def test_signed_deliveries_are_accepted_and_forged_ones_refused(serve: Serve) -> None:
    url = await serve(livekit_settings(API_KEY, API_SECRET))
    body, authorization = signed_webhook(room_finished())
    _, forged = signed_webhook(room_finished(), secret="forged-secret-0123456789abcdefghijk")

    assert await post(url, body, authorization) == (200, {"id": "EV_1", "event": "room_finished"})
    status, problem = await post(url, body, forged)
    assert status == 401
    assert problem["status"] == 401 and "signature" in str(problem["detail"])


async def test_without_livekit_settings_the_route_is_not_found(serve: Serve) -> None:
    url = await serve(livekit_settings())
    body, authorization = signed_webhook(room_finished())

    status, problem = await post(url, body, authorization)
    assert status == 404 and problem["status"] == 404

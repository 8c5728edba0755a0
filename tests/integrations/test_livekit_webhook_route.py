"""The LiveKit webhook route of the real API, with LiveKit-signed deliveries."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from pawhub.settings import Settings
from tests.conftest import serve_api
from tests.integrations.test_livekit import API_KEY, API_SECRET, room_finished, signed_webhook

Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve(settings: Settings) -> AsyncIterator[Serve]:
    """The API, with LiveKit's key and secret as given, on 127.0.0.1; the route's URL."""
    async with contextlib.AsyncExitStack() as servers:

        async def start(api_key: str | None = None, api_secret: str | None = None) -> str:
            keys = {"livekit_api_key": api_key, "livekit_api_secret": api_secret}
            api_url = await servers.enter_async_context(serve_api(settings.model_copy(update=keys)))
            return f"{api_url}/v1/webhooks/livekit"

        yield start


async def post(url: str, body: str, authorization: str) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": authorization, "Content-Type": "application/webhook+json"}
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as reply:
        return reply.status, await reply.json(content_type=None)


async def test_signed_deliveries_are_accepted_and_forged_ones_refused(serve: Serve) -> None:
    url = await serve(API_KEY, API_SECRET)
    body, authorization = signed_webhook(room_finished())
    _, forged = signed_webhook(room_finished(), secret="forged-secret-0123456789abcdefghijk")

    assert await post(url, body, authorization) == (200, {"id": "EV_1", "event": "room_finished"})
    status, problem = await post(url, body, forged)
    assert status == 401
    assert problem["status"] == 401 and "signature" in str(problem["detail"])


async def test_without_livekit_settings_the_route_is_not_found(serve: Serve) -> None:
    url = await serve()
    body, authorization = signed_webhook(room_finished())

    status, problem = await post(url, body, authorization)
    assert status == 404 and problem["status"] == 404

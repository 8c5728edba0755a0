from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pawhub.settings import Settings
from tests.conftest import start_hub
from tests.realtime.chat_client import ChatClient


@pytest.fixture(scope="session")
async def chat_url(settings: Settings) -> AsyncIterator[str]:
    """A hub without the send rate limit, for tests that send a lot."""
    runner, url = await start_hub(settings.model_copy(update={"chat_rate_limit": 0}))
    yield url
    await runner.cleanup()


@pytest.fixture
async def connect(chat_url: str) -> AsyncIterator[Callable[..., Awaitable[ChatClient]]]:
    clients: list[ChatClient] = []

    async def open_client(token: str, url: str = chat_url) -> ChatClient:
        client = await ChatClient.connect(url, token)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()

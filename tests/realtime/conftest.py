from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from domain.conversations import create_conversation
from domain.identity import Role, User
from pawhub.settings import Settings
from tests.conftest import start_hub
from tests.realtime.chat_client import ChatClient


@pytest.fixture(scope="session")
async def chat_url(settings: Settings) -> AsyncIterator[str]:
    """A hub without the send rate limit, for tests that send a lot."""
    runner, url = await start_hub(settings.model_copy(update={"chat_rate_limit": 0}))
    yield url
    await runner.cleanup()


Member = tuple[User, str]


@pytest.fixture
async def room(pool: asyncpg.Pool, make_user: Any) -> tuple[UUID, Member, Member]:
    """A conversation between an owner and a vet, with their tokens."""
    owner = await make_user(Role.owner, "Olive Owner")
    vet = await make_user(Role.vet, "Dr. Vera Vet")
    async with pool.acquire() as conn:
        conversation = await create_conversation(conn, owner[0].id, [vet[0].id], "Rex")
    return conversation.id, owner, vet


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

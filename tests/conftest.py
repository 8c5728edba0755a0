"""Shared fixtures: real PostgreSQL and Redis (the machine's when DATABASE_URL / REDIS_URL are set,
embedded otherwise), a fresh database per test run, and the hub and API on real ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import asyncpg
import pytest
import uvicorn
from aiohttp import web

from deploy.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from domain.conversations import create_conversation
from domain.identity import NewUser, Role, User
from domain.tokens import issue_access_token
from domain.users import create_user
from pawhub.hub import build_hub_app
from pawhub.resources import migrate_database
from pawhub.settings import Settings
from realtime.server import HubSite
from rest.app import create_app
from tests.recording_client import ChatClient

RUN_ID = uuid4().hex[:10]


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("embedded")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("embedded")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A database of this test run's own, migrated, dropped at the end."""
    name = f"pawhub_test_{RUN_ID}"
    admin = await asyncpg.connect(postgres_server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(postgres_server_url, name)
    await migrate_database(url)
    yield url
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=redis_url,
        redis_namespace=f"pawhub-test-{RUN_ID}",
        data_dir=str(Path(".pawhub-test") / RUN_ID),
    )


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
    assert pool is not None
    yield pool
    await pool.close()


async def start_hub(settings: Settings) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_hub_app(settings))
    await runner.setup()
    port = free_port()
    await HubSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
async def hub_url(settings: Settings) -> AsyncIterator[str]:
    runner, url = await start_hub(settings)
    yield url
    await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_api(settings: Settings) -> AsyncIterator[str]:
    """The API for `settings` on a real port, for tests that need other settings than api_url."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the API exited during start-up"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def api_url(settings: Settings) -> AsyncIterator[str]:
    async with serve_api(settings) as url:
        yield url


@pytest.fixture
async def make_user(pool: asyncpg.Pool, settings: Settings):  # type: ignore[no-untyped-def]
    """Create a real user and return it with a valid access token."""

    async def make(role: Role = Role.owner, name: str = "Test User") -> tuple[User, str]:
        user = await create_user(
            pool,
            NewUser(
                email=f"{uuid4().hex[:12]}@example.com",
                password="correct horse",
                name=name,
                role=role,
            ),
        )
        return user, issue_access_token(user, settings.jwt_secret)

    return make


Member = tuple[User, str]


@pytest.fixture
async def room(pool: asyncpg.Pool, make_user: Any) -> tuple[UUID, Member, Member]:
    """A conversation between an owner and a vet, with their tokens."""
    owner = await make_user(Role.owner, "Olive Owner")
    vet = await make_user(Role.vet, "Dr. Vera Vet")
    async with pool.acquire() as conn:
        conversation = await create_conversation(conn, owner[0].id, [vet[0].id], "Rex")
    return conversation.id, owner, vet


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

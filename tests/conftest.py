"""Shared fixtures: real PostgreSQL and Redis (the machine's when DATABASE_URL / REDIS_URL are set,
embedded otherwise), a fresh database per test run, and the hub and API on real ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import asyncpg
import pytest
import uvicorn
from aiohttp import web

from deploy.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedS3, free_port
from domain.chat.conversations import create_conversation
from domain.clinical.pets import NewPet, Pet, create_pet
from domain.identity import NewUser, Role, User
from domain.identity.tokens import issue_access_token
from domain.identity.users import create_user
from domain.scheduling.availability import Availability, WeeklyWindow, set_availability
from domain.scheduling.booking_rules import Booking, BookingKind, NewBooking
from domain.scheduling.bookings import create_booking
from pawhub.api import create_app
from pawhub.hub import build_hub_app
from pawhub.resources import migrate_database
from pawhub.settings import Settings
from realtime.limits import SocketLimits
from realtime.server import KEEPALIVE_TIMEOUT_S, HubSite
from tests.recording_client import ChatClient
from tests.redis_cluster import RedisClusterProcesses

RUN_ID = uuid4().hex[:10]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups for `pytest -n 2 --dist loadgroup` (make test): the slow multi-process tests all on
    one worker, one at a time as in a serial run, so that no two of them load the machine at
    once; every other module on whichever worker is free, its module fixtures set up once."""
    for item in items:
        slow = item.get_closest_marker("slow") is not None
        item.add_marker(pytest.mark.xdist_group("slow" if slow else item.nodeid.split("::")[0]))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def machine_or_embedded(
    variable: str,
    embedded: type[EmbeddedPostgres | EmbeddedRedis | EmbeddedS3],
    tmp: pytest.TempPathFactory,
) -> Iterator[str]:
    """The server's URL from `variable` if set, else of an embedded server for the session."""
    if url := os.environ.get(variable):
        yield url
        return
    server = embedded(tmp.mktemp("embedded")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from machine_or_embedded("DATABASE_URL", EmbeddedPostgres, tmp_path_factory)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from machine_or_embedded("REDIS_URL", EmbeddedRedis, tmp_path_factory)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of the session's own (three primaries), for what must run on one too."""
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


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
        # Two test runs (make test's workers), each with several hubs and APIs, share one
        # PostgreSQL's 100 connections.
        database_pool_size=8,
    )


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
    assert pool is not None
    yield pool
    await pool.close()


async def start_hub(
    settings: Settings, limits: SocketLimits | None = None
) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(
        build_hub_app(settings, limits=limits), keepalive_timeout=KEEPALIVE_TIMEOUT_S
    )
    await runner.setup()
    port = free_port()
    site = HubSite(
        runner, "127.0.0.1", port, max_connections_per_ip=settings.max_connections_per_ip
    )
    await site.start()
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
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            proxy_headers=False,  # as `pawhub api`: only TRUSTED_PROXIES may name the client
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


@dataclass(frozen=True)
class BookedPet:
    """An owner's pet booked with a vet for 30 minutes two days ahead."""

    owner: User
    vet: User
    pet: Pet
    booking: Booking


BookPet = Callable[..., Awaitable[BookedPet]]


@pytest.fixture
def book_pet(pool: asyncpg.Pool, make_user: Any) -> BookPet:
    """Book a new owner's pet with a new vet open around the clock, through the domain."""

    async def book(kind: BookingKind = BookingKind.video) -> BookedPet:
        owner, _ = await make_user(Role.owner)
        vet, _ = await make_user(Role.vet)
        always = [WeeklyWindow(weekday=day, start="00:00", end="24:00") for day in range(7)]
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        async with pool.acquire() as conn:
            await set_availability(conn, vet.id, Availability(time_zone="UTC", weekly=always))
            pet = await create_pet(conn, owner.id, NewPet(name="Rex", species="dog"))
            new = NewBooking(vet_id=vet.id, pet_id=pet.id, start=start, duration_min=30, kind=kind)
            booking = await create_booking(conn, owner.id, new)
        return BookedPet(owner, vet, pet, booking)

    return book


@pytest.fixture
async def booked_pet(book_pet: BookPet) -> BookedPet:
    """A video booking (which opens a consult with the owner and vet as participants)."""
    return await book_pet()


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

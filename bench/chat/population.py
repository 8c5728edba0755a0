"""The bench's users and rooms, made directly in PostgreSQL with pawhub's domain functions.

Users are kept between runs (`bench-NNNNN@bench.example.com`): each costs an argon2 hash
(about 0.2 s of CPU), so only the missing ones are created. Rooms are new conversations on
every invocation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from uuid import uuid4

import asyncpg

from bench.chat.workload import Workload
from domain.chat.conversations import create_conversation
from domain.identity import NewUser, Role, User
from domain.identity.tokens import issue_access_token
from domain.identity.users import EmailTaken, create_user

_PASSWORD = "bench password, never a real one"
_PARALLEL = 4


@dataclass(frozen=True)
class Population:
    tokens: list[str]  # per user
    rooms: list[str]  # conversation ids


def _email(index: int) -> str:
    return f"bench-{index:05d}@bench.example.com"


async def _users(pool: asyncpg.Pool, count: int) -> list[User]:
    emails = [_email(index) for index in range(count)]
    rows = await pool.fetch("SELECT id, email, name, role FROM users WHERE email = ANY($1)", emails)
    known = {row["email"]: User(**dict(row)) for row in rows}
    gate = asyncio.Semaphore(_PARALLEL)

    async def create(index: int) -> None:
        async with gate:
            new_user = NewUser(
                email=_email(index), password=_PASSWORD, name=f"Bench {index}", role=Role.owner
            )
            try:
                known[new_user.email] = await create_user(pool, new_user)
            except EmailTaken:  # another tester created it meanwhile
                row = await pool.fetchrow(
                    "SELECT id, email, name, role FROM users WHERE email = $1", new_user.email
                )
                assert row is not None
                known[new_user.email] = User(**dict(row))

    await asyncio.gather(*(create(i) for i, email in enumerate(emails) if email not in known))
    return [known[email] for email in emails]


async def _rooms(database_url: str, users: list[User], members: list[set[int]]) -> list[str]:
    """One conversation per room, created over a few connections at once."""
    tag = uuid4().hex[:8]
    rooms: list[str] = [""] * len(members)

    async def create_some(first: int) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for room in range(first, len(members), _PARALLEL):
                creator, *others = sorted(members[room])
                conversation = await create_conversation(
                    conn, users[creator].id, [users[o].id for o in others], f"bench {tag} {room}"
                )
                rooms[room] = str(conversation.id)
        finally:
            await conn.close()

    await asyncio.gather(*(create_some(first) for first in range(_PARALLEL)))
    return rooms


async def populate(database_url: str, jwt_secret: str, workload: Workload) -> Population:
    token_ttl = timedelta(seconds=3600 + 4 * (workload.warmup + workload.duration))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=_PARALLEL)
    assert pool is not None
    try:
        users = await _users(pool, workload.user_count)
        members: list[set[int]] = [set() for _ in range(workload.rooms)]
        for client in range(workload.clients):
            members[workload.room_of(client)].add(workload.user_of(client))
        rooms = await _rooms(database_url, users, members)
    finally:
        await pool.close()
    tokens = [issue_access_token(user, jwt_secret, ttl=token_ttl) for user in users]
    return Population(tokens, rooms)

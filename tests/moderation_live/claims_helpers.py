"""Flags made through the domain (no scoring worker needed), for the claim tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from domain.chat.messages import store_message
from domain.chat.moderation import raise_model_flag
from domain.identity import User
from domain.identity.tokens import Principal
from tests.recording_client import ModeratorClient

Moderator = tuple[User, ModeratorClient]
OpenModerator = Callable[..., Awaitable[Moderator]]


async def make_flags(pool: asyncpg.Pool, room: Any, count: int = 1) -> list[str]:
    """`count` open model flags on new messages from the room's owner."""
    room_id, owner, _ = room
    sender = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
    flag_ids = []
    for n in range(count):
        message, _ = await store_message(pool, room_id, sender, uuid4().hex, f"rude {n}")
        flag = await raise_model_flag(
            pool, room_id, message.id, {"insult": 0.9}, "insult 0.90", "vet-linear", "1"
        )
        assert flag is not None
        flag_ids.append(str(flag.id))
    return flag_ids


def claimed_by(flag: dict[str, Any]) -> UUID | None:
    holder = flag["claimed_by"]
    return None if holder is None else UUID(holder["user_id"])

"""What moderators do about a flag: dismiss, delete, mute, ban or escalate. Every action
changes the flag, applies its effect and is recorded in `moderation_actions` and the audit log,
all in one transaction. A flag another moderator has claimed is refused unless the action takes
it over (audited as such); an action ends the claim on its flag, the work it guarded done."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from domain import audit
from domain.chat.claims import take_over_if_asked
from domain.chat.edits import redact_message
from domain.chat.errors import FlagNotFound
from domain.chat.flags import Flag, FlagStatus, get_flag
from domain.chat.messages import Message
from domain.errors import Forbidden
from domain.identity import Role
from domain.identity.tokens import Principal

DEFAULT_MUTE = timedelta(hours=1)
MAX_MUTE = timedelta(days=30)


class ModeratorAction(StrEnum):
    dismiss = "dismiss"
    delete = "delete"
    mute = "mute"
    ban = "ban"
    escalate = "escalate"


def may_moderate(role: Role) -> bool:
    return role in (Role.moderator, Role.admin)


class ActionOutcome(BaseModel):
    """A flag after an action, and the effect the room must see."""

    flag: Flag
    redacted: Message | None = None
    muted_until: datetime | None = None
    banned: UUID | None = None


_STATUS_AFTER = {
    ModeratorAction.dismiss: FlagStatus.dismissed,
    ModeratorAction.delete: FlagStatus.actioned,
    ModeratorAction.mute: FlagStatus.actioned,
    ModeratorAction.ban: FlagStatus.actioned,
    ModeratorAction.escalate: FlagStatus.escalated,
}


async def act_on_flag(
    pool: asyncpg.Pool,
    flag_id: UUID,
    actor: Principal,
    action: ModeratorAction,
    reason: str | None,
    duration: timedelta | None,
    *,
    take_over: bool = False,
) -> ActionOutcome:
    """Apply a moderator's action in one transaction and record who did it and why."""
    if not may_moderate(actor.role):
        raise Forbidden("only moderators and admins act on flags")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT room, message_id FROM flags WHERE id = $1 FOR UPDATE", flag_id
        )
        if row is None:
            raise FlagNotFound()
        room, message_id = row["room"], row["message_id"]
        taken_from = await take_over_if_asked(conn, flag_id, actor, take_over)
        await conn.execute("DELETE FROM flag_claims WHERE flag_id = $1", flag_id)
        outcome: dict[str, Any] = {}
        sender: UUID = await conn.fetchval(
            "SELECT sender_id FROM messages WHERE id = $1", message_id
        )
        if action is ModeratorAction.delete:
            outcome["redacted"] = await redact_message(conn, room, message_id, actor)
        elif action is ModeratorAction.mute:
            length = min(duration or DEFAULT_MUTE, MAX_MUTE)
            outcome["muted_until"] = await conn.fetchval(
                """INSERT INTO room_mutes (room, user_id, until) VALUES ($1, $2, now() + $3)
                   ON CONFLICT (room, user_id) DO UPDATE SET until = excluded.until
                   RETURNING until""",
                room,
                sender,
                length,
            )
        elif action is ModeratorAction.ban:
            await conn.execute(
                "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
                room,
                sender,
            )
            await conn.execute(
                "INSERT INTO room_bans (room, user_id, banned_by) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                room,
                sender,
                actor.user_id,
            )
            outcome["banned"] = sender
        await conn.execute(
            "UPDATE flags SET status = $2, updated_at = now() WHERE id = $1",
            flag_id,
            _STATUS_AFTER[action].value,
        )
        await conn.execute(
            """INSERT INTO moderation_actions (flag_id, actor_id, action, reason, duration_s,
                                              took_over_from)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            flag_id,
            actor.user_id,
            action.value,
            reason,
            int(duration.total_seconds()) if duration else None,
            taken_from,
        )
        await audit.append(
            conn,  # type: ignore[arg-type]  # a pooled connection is a Connection at run time
            audit.Actor(actor.user_id),
            f"moderation.{action.value}",
            "flag",
            flag_id,
        )
        return ActionOutcome(flag=await get_flag(conn, flag_id), **outcome)

"""Moderation: flags raised by the model or by users, and what moderators do about them.

Every moderator action changes the flag, applies its effect (a redaction, a mute, a ban) and is
recorded in `moderation_actions` and the audit log, all in one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from domain import audit
from domain.db import Db
from domain.identity import Role
from domain.messages import Message, get_message, redact_message
from domain.tokens import Principal

DEFAULT_MUTE = timedelta(hours=1)
MAX_MUTE = timedelta(days=30)


class FlagStatus(StrEnum):
    open = "open"
    dismissed = "dismissed"
    actioned = "actioned"
    escalated = "escalated"


class ModeratorAction(StrEnum):
    dismiss = "dismiss"
    delete = "delete"
    mute = "mute"
    ban = "ban"
    escalate = "escalate"


def may_moderate(role: Role) -> bool:
    return role in (Role.moderator, Role.admin)


class FlagNotFound(Exception):
    """No such flag."""


class Flag(BaseModel):
    """A flag as CONTRACT.md shows it (`source`, `model`, `model_version` are extensions)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    room: UUID
    message: Message
    labels: dict[str, float]
    reason: str
    status: FlagStatus
    ts: datetime
    source: str
    model: str | None
    model_version: str | None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ActionOutcome(BaseModel):
    """A flag after an action, and the effect the room must see."""

    flag: Flag
    redacted: Message | None = None
    muted_until: datetime | None = None
    banned: UUID | None = None


_FLAG_COLUMNS = """id, room, message_id, labels, reason, status, created_at, source, model,
                   model_version"""


async def _flag_from_row(conn: Db, row: asyncpg.Record) -> Flag:
    return Flag(
        id=row["id"],
        room=row["room"],
        message=await get_message(conn, row["room"], row["message_id"]),
        labels=json.loads(row["labels"]),
        reason=row["reason"],
        status=row["status"],
        ts=row["created_at"],
        source=row["source"],
        model=row["model"],
        model_version=row["model_version"],
    )


async def raise_model_flag(
    conn: Db,
    room: UUID,
    message_id: UUID,
    labels: dict[str, float],
    reason: str,
    model: str,
    model_version: str,
) -> Flag | None:
    """Flag a message the model scored over a threshold; None if it was flagged already."""
    row = await conn.fetchrow(
        f"""INSERT INTO flags (room, message_id, source, labels, reason, model, model_version)
            VALUES ($1, $2, 'model', $3, $4, $5, $6)
            ON CONFLICT (message_id) WHERE source = 'model' DO NOTHING
            RETURNING {_FLAG_COLUMNS}""",
        room,
        message_id,
        json.dumps(labels),
        reason[:1000],
        model,
        model_version,
    )
    return await _flag_from_row(conn, row) if row else None


async def report_message(
    conn: Db,
    room: UUID,
    message_id: UUID,
    reporter: UUID,
    reason: str,
) -> Flag:
    """A member reports a message of their room (the caller checked membership)."""
    await get_message(conn, room, message_id)  # raises MessageNotFound
    row = await conn.fetchrow(
        f"""INSERT INTO flags (room, message_id, source, reason, reporter_id)
            VALUES ($1, $2, 'report', $3, $4) RETURNING {_FLAG_COLUMNS}""",
        room,
        message_id,
        reason,
        reporter,
    )
    assert row is not None
    return await _flag_from_row(conn, row)


async def get_flag(conn: Db, flag_id: UUID) -> Flag:
    row = await conn.fetchrow(f"SELECT {_FLAG_COLUMNS} FROM flags WHERE id = $1", flag_id)
    if row is None:
        raise FlagNotFound(str(flag_id))
    return await _flag_from_row(conn, row)


async def list_flags(
    conn: Db,
    *,
    statuses: list[FlagStatus] | None = None,
    room: UUID | None = None,
    before: datetime | None = None,
    limit: int = 50,
) -> tuple[list[Flag], bool]:
    """Flags newest first, filtered, one page at a time; and whether more remain."""
    rows = await conn.fetch(
        f"""SELECT {_FLAG_COLUMNS} FROM flags
             WHERE ($1::text[] IS NULL OR status = ANY($1))
               AND ($2::uuid IS NULL OR room = $2)
               AND ($3::timestamptz IS NULL OR created_at < $3)
             ORDER BY created_at DESC, id DESC LIMIT $4""",
        [status.value for status in statuses] if statuses else None,
        room,
        before,
        limit + 1,
    )
    return [await _flag_from_row(conn, row) for row in rows[:limit]], len(rows) > limit


async def room_has_flag(conn: Db, room: UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM flags WHERE room = $1)", room))


async def flag_stats(conn: Db) -> dict[str, Any]:
    """Counts by status, source and model, and actions by kind."""
    by_status = await conn.fetch("SELECT status, count(*) AS n FROM flags GROUP BY status")
    by_source = await conn.fetch(
        "SELECT source, coalesce(model, 'user report') AS model, count(*) AS n"
        " FROM flags GROUP BY source, model"
    )
    actions = await conn.fetch(
        "SELECT action, count(*) AS n FROM moderation_actions GROUP BY action"
    )
    return {
        "by_status": {status.value: 0 for status in FlagStatus}
        | {row["status"]: row["n"] for row in by_status},
        "by_model": {row["model"]: row["n"] for row in by_source},
        "actions": {row["action"]: row["n"] for row in actions},
    }


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
) -> ActionOutcome:
    """Apply a moderator's action in one transaction and record who did it and why."""
    if not may_moderate(actor.role):
        raise PermissionError("only moderators and admins act on flags")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT room, message_id FROM flags WHERE id = $1 FOR UPDATE", flag_id
        )
        if row is None:
            raise FlagNotFound(str(flag_id))
        room, message_id = row["room"], row["message_id"]
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
            """INSERT INTO moderation_actions (flag_id, actor_id, action, reason, duration_s)
               VALUES ($1, $2, $3, $4, $5)""",
            flag_id,
            actor.user_id,
            action.value,
            reason,
            int(duration.total_seconds()) if duration else None,
        )
        await audit.append(
            conn,  # type: ignore[arg-type]  # a pooled connection is a Connection at run time
            audit.Actor(actor.user_id),
            f"moderation.{action.value}",
            "flag",
            flag_id,
        )
        return ActionOutcome(flag=await get_flag(conn, flag_id), **outcome)

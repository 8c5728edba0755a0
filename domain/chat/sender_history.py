"""A sender's moderation history, for moderators deciding on a new flag: the sender's earlier
flags (newest first, a page at a time) and what moderators did about each."""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.chat.flags import FlagStatus
from domain.db import Db
from domain.errors import NotFound
from domain.fields import Named, named
from domain.identity import Role

MAX_HISTORY_PAGE = 50
ACTIONS_PER_FLAG = 20  # the newest; a flag is rarely acted on more than a few times


class PastAction(BaseModel):
    """What a moderator did about a flag, and why."""

    model_config = ConfigDict(frozen=True)

    action: str
    reason: str | None
    duration_s: int | None
    actor: Named
    at: datetime
    took_over_from: Named | None


class PastFlag(BaseModel):
    """One of the sender's flags: the text it was raised on (None once purged), and the
    actions taken on it, newest first."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    room: UUID
    message_id: UUID
    body: str | None
    labels: dict[str, float]
    reason: str
    source: str
    status: FlagStatus
    ts: datetime
    actions: list[PastAction]


class SenderHistory(BaseModel):
    model_config = ConfigDict(frozen=True)

    user: Named
    role: Role
    flags: list[PastFlag]
    has_more: bool
    next_before: datetime | None


async def sender_history(
    conn: Db, sender: UUID, *, before: datetime | None = None, limit: int = 20
) -> SenderHistory:
    """The sender's flags raised before `before` (all if None), newest first, at most `limit`
    (up to MAX_HISTORY_PAGE), each with its newest ACTIONS_PER_FLAG actions."""
    limit = max(1, min(limit, MAX_HISTORY_PAGE))
    user = await conn.fetchrow("SELECT id, name, role FROM users WHERE id = $1", sender)
    if user is None:
        raise NotFound("no such user")
    rows = await conn.fetch(
        """SELECT id, room, message_id, evidence, labels, reason, source, status, created_at
             FROM flags
            WHERE sender_id = $1 AND ($2::timestamptz IS NULL OR created_at < $2)
            ORDER BY created_at DESC, id DESC LIMIT $3""",
        sender,
        before,
        limit + 1,
    )
    page = rows[:limit]
    actions: dict[UUID, list[PastAction]] = {}
    for row in await conn.fetch(
        """SELECT a.flag_id, a.action, a.reason, a.duration_s, a.at, a.actor_id,
                  actor.name AS actor_name, a.took_over_from, taken.name AS taken_name
             FROM unnest($1::uuid[]) AS wanted(flag_id)
             CROSS JOIN LATERAL (
                 SELECT * FROM moderation_actions m WHERE m.flag_id = wanted.flag_id
                  ORDER BY m.at DESC LIMIT $2) a
             JOIN users actor ON actor.id = a.actor_id
             LEFT JOIN users taken ON taken.id = a.took_over_from
            ORDER BY a.at DESC""",
        [row["id"] for row in page],
        ACTIONS_PER_FLAG,
    ):
        actions.setdefault(row["flag_id"], []).append(
            PastAction(
                action=row["action"],
                reason=row["reason"],
                duration_s=row["duration_s"],
                actor=Named(id=row["actor_id"], name=row["actor_name"]),
                at=row["at"],
                took_over_from=named(row["took_over_from"], row["taken_name"]),
            )
        )
    return SenderHistory(
        user=Named(id=user["id"], name=user["name"]),
        role=user["role"],
        flags=[
            PastFlag(
                id=row["id"],
                room=row["room"],
                message_id=row["message_id"],
                body=row["evidence"],
                labels=json.loads(row["labels"]),
                reason=row["reason"],
                source=row["source"],
                status=row["status"],
                ts=row["created_at"],
                actions=actions.get(row["id"], []),
            )
            for row in page
        ],
        has_more=len(rows) > limit,
        next_before=page[-1]["created_at"] if len(rows) > limit else None,
    )

"""Flags: raised by the model (see `domain.chat.moderation`) or reported by members, each
keeping the text it was raised on (its evidence) whatever the sender does later, and shown to
moderators with every body the sender replaced."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from domain.chat.errors import FlagNotFound, MessageNotFound
from domain.chat.messages import Message, Sender
from domain.db import Db


class FlagStatus(StrEnum):
    open = "open"
    dismissed = "dismissed"
    actioned = "actioned"
    escalated = "escalated"


class ReplacedBody(BaseModel):
    """A body the sender replaced (by an edit, or by the delete), kept for moderators."""

    model_config = ConfigDict(frozen=True)

    revision: int
    body: str
    replaced_at: datetime
    replaced_by: Literal["edit", "delete"]


class FlagOrder(StrEnum):
    newest = "newest"
    severity = "severity"  # the highest label score first (a user's report scores 0)


class ClaimHolder(BaseModel):
    """The moderator working on a flag (`domain.chat.claims`), and until when."""

    model_config = ConfigDict(frozen=True)

    user_id: UUID
    name: str
    until: datetime


class Flag(BaseModel):
    """A flag as CONTRACT.md shows it. `message.body` is the evidence: the text the flag was
    raised on, whatever the sender did since. Extensions: `source`, `model`, `model_version`;
    `revision` (of the message, when flagged), `current` (the body members see now, "" once
    deleted), `edits` (the replaced bodies, oldest first) and `claimed_by` (the live claim)."""

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
    revision: int
    current: str
    edits: list[ReplacedBody]
    claimed_by: ClaimHolder | None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


_SELECT_FLAGS = """
    SELECT f.id, f.room, f.message_id, f.labels, f.reason, f.status, f.created_at, f.source,
           f.model, f.model_version, f.revision, f.evidence, m.seq, m.client_id, m.body,
           m.created_at AS message_ts, m.edited_at, m.deleted_at, m.sender_id,
           u.name AS sender_name, u.role AS sender_role,
           c.moderator_id AS claimer_id, cu.name AS claimer_name, c.until AS claimed_until
      FROM flags f JOIN messages m ON m.id = f.message_id JOIN users u ON u.id = m.sender_id
      LEFT JOIN flag_claims c ON c.flag_id = f.id AND c.until > now()
      LEFT JOIN users cu ON cu.id = c.moderator_id"""
# A flag's severity: its highest label score.
_SEVERITY = "(SELECT coalesce(max(value::float8), 0) FROM jsonb_each_text(f.labels))"
_ORDER = {
    FlagOrder.newest: "f.created_at DESC, f.id DESC",
    FlagOrder.severity: f"{_SEVERITY} DESC, f.created_at DESC, f.id DESC",
}


async def _flags_from_rows(conn: Db, rows: list[asyncpg.Record]) -> list[Flag]:
    """Flags with their evidence and the replaced bodies of their messages (one more query)."""
    edits: dict[UUID, list[ReplacedBody]] = {}
    for edit in await conn.fetch(
        """SELECT message_id, revision, body, replaced_at, replaced_by FROM message_revisions
            WHERE message_id = ANY($1::uuid[]) ORDER BY message_id, revision""",
        list({row["message_id"] for row in rows}),
    ):
        edits.setdefault(edit["message_id"], []).append(
            ReplacedBody(
                revision=edit["revision"],
                body=edit["body"],
                replaced_at=edit["replaced_at"],
                replaced_by=edit["replaced_by"],
            )
        )
    return [
        Flag(
            id=row["id"],
            room=row["room"],
            message=Message(
                id=row["message_id"],
                room=row["room"],
                seq=row["seq"],
                client_id=row["client_id"],
                sender=Sender(
                    id=row["sender_id"], name=row["sender_name"], role=row["sender_role"]
                ),
                body=row["body"] if row["evidence"] is None else row["evidence"],
                ts=row["message_ts"],
                edited_at=row["edited_at"],
                deleted=row["deleted_at"] is not None,
            ),
            labels=json.loads(row["labels"]),
            reason=row["reason"],
            status=row["status"],
            ts=row["created_at"],
            source=row["source"],
            model=row["model"],
            model_version=row["model_version"],
            revision=row["revision"],
            current=row["body"],
            edits=edits.get(row["message_id"], []),
            claimed_by=None
            if row["claimer_id"] is None
            else ClaimHolder(
                user_id=row["claimer_id"], name=row["claimer_name"], until=row["claimed_until"]
            ),
        )
        for row in rows
    ]


async def report_message(
    conn: Db,
    room: UUID,
    message_id: UUID,
    reporter: UUID,
    reason: str,
) -> Flag:
    """A member reports a message of their room (the caller checked membership). The evidence
    is the body the reporter saw: the current one, or the last one before a delete."""
    flag_id = await conn.fetchval(
        """INSERT INTO flags (room, message_id, sender_id, revision, evidence, source, reason,
                              reporter_id)
           SELECT m.room, m.id, m.sender_id, m.revision,
                  CASE WHEN m.deleted_at IS NULL THEN m.body
                       ELSE (SELECT body FROM message_revisions
                              WHERE message_id = m.id ORDER BY revision DESC LIMIT 1) END,
                  'report', $3, $4
             FROM messages m WHERE m.room = $1 AND m.id = $2
           RETURNING id""",
        room,
        message_id,
        reason,
        reporter,
    )
    if flag_id is None:
        raise MessageNotFound()
    return await get_flag(conn, flag_id)


async def get_flag(conn: Db, flag_id: UUID) -> Flag:
    rows = await conn.fetch(_SELECT_FLAGS + " WHERE f.id = $1", flag_id)
    if not rows:
        raise FlagNotFound()
    [flag] = await _flags_from_rows(conn, rows)
    return flag


async def flags_by_id(conn: Db, flag_ids: list[UUID]) -> list[Flag]:
    rows = await conn.fetch(_SELECT_FLAGS + " WHERE f.id = ANY($1::uuid[])", flag_ids)
    return await _flags_from_rows(conn, rows)


async def list_flags(
    conn: Db,
    *,
    statuses: list[FlagStatus] | None = None,
    room: UUID | None = None,
    label: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    order: FlagOrder = FlagOrder.newest,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Flag], bool]:
    """Flags filtered (created in [since, before), with `label` among their labels), newest or
    most severe first, one page at a time; and whether more remain."""
    rows = await conn.fetch(
        _SELECT_FLAGS
        + f""" WHERE ($1::text[] IS NULL OR f.status = ANY($1))
                 AND ($2::uuid IS NULL OR f.room = $2)
                 AND ($3::timestamptz IS NULL OR f.created_at < $3)
                 AND ($4::timestamptz IS NULL OR f.created_at >= $4)
                 AND ($5::text IS NULL OR f.labels ? $5)
               ORDER BY {_ORDER[order]} LIMIT $6 OFFSET $7""",
        [status.value for status in statuses] if statuses else None,
        room,
        before,
        since,
        label,
        limit + 1,
        offset,
    )
    return await _flags_from_rows(conn, rows[:limit]), len(rows) > limit


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

"""A flag's audit trail, oldest first: how it was raised (by the model or by whose report), then
every entry the audit log holds for it (each action, and each take-over of another
moderator's claim), an action carrying its reason and duration as moderation_actions stored
them. Who, what, when and why, for the moderators and for anyone reviewing them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.db import Db
from domain.errors import NotFound
from domain.fields import Named, named

MAX_TRAIL = 500  # entries returned; a flag acted on this often is a problem of its own


class TrailEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    what: str  # "raised" or the audit log's action, e.g. "moderation.delete"
    by: Named | None  # None: raised by the model
    reason: str | None
    duration_s: int | None = None
    took_over_from: Named | None = None  # whose claim the actor took over, with this action


class FlagTrail(BaseModel):
    model_config = ConfigDict(frozen=True)

    flag_id: UUID
    entries: list[TrailEntry]
    truncated: bool


async def flag_trail(conn: Db, flag_id: UUID) -> FlagTrail:
    raised = await conn.fetchrow(
        """SELECT f.created_at, f.source, f.reason, f.model, r.id AS reporter_id,
                  r.name AS reporter_name
             FROM flags f LEFT JOIN users r ON r.id = f.reporter_id WHERE f.id = $1""",
        flag_id,
    )
    if raised is None:
        raise NotFound("no such flag")
    reporter = raised["reporter_id"]
    entries = [
        TrailEntry(
            at=raised["created_at"],
            what="raised",
            by=named(reporter, raised["reporter_name"]),
            reason=raised["reason"]
            if reporter is not None
            else f"{raised['reason']} (model {raised['model']})",
        )
    ]
    # An audit entry `moderation.<action>` (and a take-over's) is written in the transaction
    # that stores the action, so both carry that transaction's now(): they pair up on actor and
    # time, the reason and duration belonging to the entry of the same action.
    rows = await conn.fetch(
        """SELECT l.at, l.action, l.actor_id, u.name AS actor_name,
                  CASE WHEN 'moderation.' || m.action = l.action THEN m.reason END AS reason,
                  CASE WHEN 'moderation.' || m.action = l.action THEN m.duration_s END
                      AS duration_s,
                  m.took_over_from, taken.name AS taken_name
             FROM audit_log l
             LEFT JOIN users u ON u.id = l.actor_id
             LEFT JOIN moderation_actions m
                    ON m.flag_id = l.target_id AND m.actor_id = l.actor_id AND m.at = l.at
             LEFT JOIN users taken ON taken.id = m.took_over_from
            WHERE l.target_type = 'flag' AND l.target_id = $1
            ORDER BY l.at, l.id LIMIT $2""",
        flag_id,
        MAX_TRAIL + 1,
    )
    entries += [
        TrailEntry(
            at=row["at"],
            what=row["action"],
            by=named(row["actor_id"], row["actor_name"]),
            reason=row["reason"],
            duration_s=row["duration_s"],
            took_over_from=named(row["took_over_from"], row["taken_name"]),
        )
        for row in rows[:MAX_TRAIL]
    ]
    return FlagTrail(flag_id=flag_id, entries=entries, truncated=len(rows) > MAX_TRAIL)

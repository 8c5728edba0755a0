"""Moderation's record keeping for the scoring pipeline: the message revisions it scores,
the flags the model raises, the revisions it set aside, and how long moderators' evidence is
kept (the text of flags and the bodies senders replaced, purged a retention period after the
flags close)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple
from uuid import UUID

from domain.chat.flags import Flag, get_flag
from domain.db import Db

# How long replaced bodies and closed flags' evidence are kept for moderators.
EVIDENCE_RETENTION = timedelta(days=30)
_CLOSED = ("dismissed", "actioned")


class MessageToScore(NamedTuple):
    """One revision of a message, as the moderation pipeline scores it."""

    id: UUID
    room: UUID
    revision: int
    body: str
    ts: datetime  # when this revision was stored


class Purged(NamedTuple):
    evidence: int  # closed flags whose evidence was forgotten
    replaced_bodies: int


async def raise_model_flag(
    conn: Db,
    room: UUID,
    message_id: UUID,
    labels: dict[str, float],
    reason: str,
    model: str,
    model_version: str,
    revision: int = 0,
) -> Flag | None:
    """Flag a message revision the model scored over a threshold, keeping that revision's text
    (kept in `message_revisions` if the sender edited or deleted it since); None if that
    revision was flagged already."""
    flag_id = await conn.fetchval(
        """INSERT INTO flags (room, message_id, sender_id, revision, evidence, source, labels,
                              reason, model, model_version)
           SELECT $1, m.id, m.sender_id, $3,
                  coalesce((SELECT body FROM message_revisions
                             WHERE message_id = m.id AND revision = $3),
                           CASE WHEN m.revision = $3 THEN m.body END),
                  'model', $4, $5, $6, $7
             FROM messages m WHERE m.id = $2
           ON CONFLICT (message_id, revision) WHERE source = 'model' DO NOTHING
           RETURNING id""",
        room,
        message_id,
        revision,
        json.dumps(labels),
        reason[:1000],
        model,
        model_version,
    )
    return await get_flag(conn, flag_id) if flag_id else None


_TO_SCORE = "SELECT id, room, revision, body, coalesce(edited_at, created_at) AS ts FROM messages"


async def messages_to_score(conn: Db, ids: Collection[UUID]) -> list[MessageToScore]:
    """The current revision of these messages; deleted ones are not scored (the stream entries
    name messages, the text is read here: Redis never holds it)."""
    rows = await conn.fetch(
        _TO_SCORE + " WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL", list(ids)
    )
    return [MessageToScore(*row) for row in rows]


async def unscored_messages(conn: Db, older_than: timedelta, limit: int) -> list[MessageToScore]:
    """Messages whose current revision was never scored although it was stored `older_than`
    ago: its hand-off was lost (a hub killed before it, a full queue, a trimmed stream)."""
    rows = await conn.fetch(
        _TO_SCORE
        + """ WHERE moderated_revision IS DISTINCT FROM revision AND deleted_at IS NULL
                          AND coalesce(edited_at, created_at) < now() - $1::interval
                        ORDER BY created_at LIMIT $2""",
        older_than,
        limit,
    )
    return [MessageToScore(*row) for row in rows]


async def mark_moderated(conn: Db, scored: Sequence[MessageToScore]) -> None:
    """Record that these revisions were scored (never moving a message's mark back)."""
    await conn.execute(
        """UPDATE messages m SET moderated_revision = v.revision
             FROM unnest($1::uuid[], $2::int[]) AS v(id, revision)
            WHERE m.id = v.id AND coalesce(m.moderated_revision, -1) < v.revision""",
        [message.id for message in scored],
        [message.revision for message in scored],
    )


async def dead_letter(conn: Db, message: MessageToScore, error: str) -> None:
    """Set aside a revision the classifier failed on: kept for a person, scored no further."""
    await conn.execute(
        """WITH _dead AS (
               INSERT INTO moderation_dead_letters (message_id, revision, error)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING)
           UPDATE messages SET moderated_revision = $2
            WHERE id = $1 AND coalesce(moderated_revision, -1) < $2""",
        message.id,
        message.revision,
        error[:1000],
    )


async def purge_evidence(conn: Db, retention: timedelta = EVIDENCE_RETENTION) -> Purged:
    """Forget the text kept for moderators once nothing needs it: the evidence of flags closed
    over `retention` ago, and replaced bodies older than that whose message has no flag still
    open, escalated or closed within `retention`."""
    evidence = await conn.execute(
        """UPDATE flags SET evidence = NULL
            WHERE evidence IS NOT NULL AND status = ANY($1::text[])
              AND updated_at < now() - $2::interval""",
        list(_CLOSED),
        retention,
    )
    bodies = await conn.execute(
        """DELETE FROM message_revisions r
            WHERE r.replaced_at < now() - $2::interval
              AND NOT EXISTS (SELECT 1 FROM flags f
                               WHERE f.message_id = r.message_id
                                 AND (f.status <> ALL($1::text[])
                                      OR f.updated_at >= now() - $2::interval))""",
        list(_CLOSED),
        retention,
    )
    return Purged(int(evidence.split()[-1]), int(bodies.split()[-1]))

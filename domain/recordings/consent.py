"""The consent ledger: every consent to recording given or withdrawn in a consult, with the
notice the person was shown and where they were. The database refuses UPDATE, DELETE and
TRUNCATE on it (migration 0091); a person's consent is their latest entry."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from domain.audit import Actor

# The version of the recording notice the clients show before asking for consent.
NOTICE_VERSION = "2026-11"


async def record_consent(
    conn: asyncpg.Connection, consult_id: UUID, actor: Actor, *, granted: bool
) -> None:
    await conn.execute(
        """INSERT INTO consent_ledger (consult_id, user_id, granted, notice_version, ip, user_agent)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        consult_id,
        actor.user_id,
        granted,
        NOTICE_VERSION,
        actor.ip,
        actor.user_agent,
    )


async def consenting(
    conn: asyncpg.Connection | asyncpg.Pool, consult_id: UUID, users: list[UUID]
) -> set[UUID]:
    """Those of `users` whose latest entry for the consult grants consent."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (user_id) user_id, granted FROM consent_ledger
            WHERE consult_id = $1 AND user_id = ANY($2::uuid[])
            ORDER BY user_id, id DESC""",
        consult_id,
        users,
    )
    return {row["user_id"] for row in rows if row["granted"]}

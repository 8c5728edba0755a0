"""The append-only audit log: who did what to which record, when, from where.

The database refuses UPDATE, DELETE and TRUNCATE on `audit_log` (see migration 0011), so an
entry, once committed, stays. Write entries in the same transaction as the action they describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where, for the audit log."""

    user_id: UUID
    ip: str | None = None
    user_agent: str | None = None


COLUMNS = "actor_id, action, target_type, target_id, ip, user_agent"


async def append(
    conn: asyncpg.Connection, actor: Actor, action: str, target_type: str, target_id: UUID
) -> None:
    await conn.execute(
        f"INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)",
        actor.user_id,
        action,
        target_type,
        target_id,
        actor.ip,
        actor.user_agent,
    )

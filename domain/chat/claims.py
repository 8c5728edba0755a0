"""Moderators' claims on flags: a moderator claims a flag to work on it, so another one never
acts on it unknowingly. Claims live in PostgreSQL beside the flags, so every hub replica sees
the same ones and an action checks the claim under the same row lock that serializes actions.

A claim lasts `CLAIM_TTL` (claiming again renews it) and lapses sooner once its moderator has
no live /moderation connection left on any replica: each replica holds a lease per connection
in `moderation_connections` and renews its own, so a replica that dies takes its leases with it
within `CONNECTION_LEASE`. A moderator holds at most `MAX_CLAIMS` at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import NamedTuple
from uuid import UUID

import asyncpg

from domain import audit
from domain.chat.errors import FlagNotFound
from domain.chat.flags import ClaimHolder, Flag, FlagStatus, get_flag
from domain.db import Db
from domain.errors import Conflict, TooLarge
from domain.identity.tokens import Principal

CLAIM_TTL = timedelta(minutes=5)
MAX_CLAIMS = 20
CONNECTION_LEASE = timedelta(seconds=90)  # renewed every 30 s by the replica holding it


class Connection(NamedTuple):
    """One moderator's socket: the replica holding it and its id there."""

    replica: str
    key: str


class ClaimedByOther(Conflict):
    """Another moderator holds the flag; the caller may take it over, knowingly."""

    def __init__(self, holder: ClaimHolder) -> None:
        super().__init__(
            f"{holder.name} has claimed this flag (until {holder.until:%H:%M:%S} UTC); "
            "take it over to go on"
        )
        self.holder = holder

    @property
    def details(self) -> dict[str, object]:
        return {"claimed_by": holder_wire(self.holder)}


class TooManyClaims(TooLarge):
    def __init__(self, limit: int) -> None:
        super().__init__(f"you hold {limit} claims already; release one or act on it first")


class FlagClosed(Conflict):
    def __init__(self, status: FlagStatus) -> None:
        super().__init__(f"the flag is {status.value}: only open or escalated flags are claimed")


def holder_wire(holder: ClaimHolder) -> dict[str, object]:
    wire: dict[str, object] = holder.model_dump(mode="json")
    return wire


async def _lock_moderator(conn: Db, moderator: UUID) -> None:
    """Serialize one moderator's claims, releases and disconnects across replicas (the bound
    on claims, and "their last connection closed", are decided under it)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('flag-claims:' || $1::uuid::text, 0))",
        moderator,
    )


async def current_claim(conn: Db, flag_id: UUID) -> ClaimHolder | None:
    """The live claim on a flag, if any (the caller holds the flag's row lock)."""
    row = await conn.fetchrow(
        """SELECT c.moderator_id, u.name, c.until FROM flag_claims c
             JOIN users u ON u.id = c.moderator_id
            WHERE c.flag_id = $1 AND c.until > now()""",
        flag_id,
    )
    if row is None:
        return None
    return ClaimHolder(user_id=row["moderator_id"], name=row["name"], until=row["until"])


async def take_over_if_asked(
    conn: Db, flag_id: UUID, actor: Principal, take_over: bool
) -> UUID | None:
    """Check the flag's claim before `actor` works on it (the caller holds the flag's row
    lock): another's claim refuses unless `take_over`, which is audited. Returns whom the flag
    was taken from."""
    holder = await current_claim(conn, flag_id)
    if holder is None or holder.user_id == actor.user_id:
        return None
    if not take_over:
        raise ClaimedByOther(holder)
    await audit.append(
        conn,  # type: ignore[arg-type]  # a pooled connection is a Connection at run time
        audit.Actor(actor.user_id),
        "moderation.take_over",
        "flag",
        flag_id,
    )
    return holder.user_id


async def register_connection(conn: Db, moderator: UUID, connection: Connection) -> None:
    await conn.execute(
        """INSERT INTO moderation_connections (replica, connection, moderator_id, live_until)
           VALUES ($1, $2, $3, now() + $4::interval)
           ON CONFLICT (replica, connection) DO UPDATE SET live_until = excluded.live_until""",
        connection.replica,
        connection.key,
        moderator,
        CONNECTION_LEASE,
    )


async def claim_flag(
    pool: asyncpg.Pool,
    flag_id: UUID,
    moderator: Principal,
    *,
    take_over: bool = False,
    max_claims: int = MAX_CLAIMS,
) -> Flag:
    """Claim (or renew the claim on) an open or escalated flag for `CLAIM_TTL`. The caller
    registered the moderator's connection first: a claim whose moderator has no live
    connection is swept."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_moderator(conn, moderator.user_id)
        status = await conn.fetchval("SELECT status FROM flags WHERE id = $1 FOR UPDATE", flag_id)
        if status is None:
            raise FlagNotFound()
        if status not in (FlagStatus.open, FlagStatus.escalated):
            raise FlagClosed(FlagStatus(status))
        await take_over_if_asked(conn, flag_id, moderator, take_over)
        held = await conn.fetchval(
            """SELECT count(*) FROM flag_claims
                WHERE moderator_id = $1 AND until > now() AND flag_id <> $2""",
            moderator.user_id,
            flag_id,
        )
        if held >= max_claims:
            raise TooManyClaims(max_claims)
        await conn.execute(
            """INSERT INTO flag_claims (flag_id, moderator_id, until)
               VALUES ($1, $2, now() + $3::interval)
               ON CONFLICT (flag_id) DO UPDATE
                  SET moderator_id = excluded.moderator_id, until = excluded.until,
                      claimed_at = CASE WHEN flag_claims.moderator_id = excluded.moderator_id
                                        THEN flag_claims.claimed_at ELSE now() END""",
            flag_id,
            moderator.user_id,
            CLAIM_TTL,
        )
        return await get_flag(conn, flag_id)


async def release_flag(
    pool: asyncpg.Pool, flag_id: UUID, moderator: Principal
) -> tuple[Flag, bool]:
    """Give up one's claim on a flag: the flag as it is now, and whether a claim was released
    (releasing what is not held changes nothing). Another's claim is refused."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_moderator(conn, moderator.user_id)
        if await conn.fetchval("SELECT 1 FROM flags WHERE id = $1 FOR UPDATE", flag_id) is None:
            raise FlagNotFound()
        holder = await current_claim(conn, flag_id)
        if holder is not None and holder.user_id != moderator.user_id:
            raise ClaimedByOther(holder)
        if holder is not None:
            await conn.execute("DELETE FROM flag_claims WHERE flag_id = $1", flag_id)
        return await get_flag(conn, flag_id), holder is not None


async def connection_closed(
    pool: asyncpg.Pool, moderator: UUID, connection: Connection
) -> list[UUID]:
    """Forget a closed connection; if it was the moderator's last live one anywhere, release
    their claims. Returns the flags released."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_moderator(conn, moderator)
        await conn.execute(
            "DELETE FROM moderation_connections WHERE replica = $1 AND connection = $2",
            connection.replica,
            connection.key,
        )
        released: list[UUID] = [
            row["flag_id"]
            for row in await conn.fetch(
                """DELETE FROM flag_claims
                    WHERE moderator_id = $1
                      AND NOT EXISTS (SELECT 1 FROM moderation_connections
                                       WHERE moderator_id = $1 AND live_until > now())
                RETURNING flag_id""",
                moderator,
            )
        ]
        return released


async def renew_connections(conn: Db, replica: str, live: Mapping[str, UUID]) -> None:
    """Renew the leases of this replica's live connections (`live`: key -> moderator)."""
    if live:
        await conn.execute(
            """INSERT INTO moderation_connections (replica, connection, moderator_id, live_until)
               SELECT $1, key, moderator, now() + $4::interval
                 FROM unnest($2::text[], $3::uuid[]) AS live(key, moderator)
               ON CONFLICT (replica, connection) DO UPDATE SET live_until = excluded.live_until""",
            replica,
            list(live),
            list(live.values()),
            CONNECTION_LEASE,
        )


async def sweep_claims(conn: Db) -> list[UUID]:
    """Delete lapsed leases and the claims that expired or whose moderator has no live
    connection left (a replica died with it). Returns the flags released: each is returned to
    exactly one replica, whichever sweeps first, which announces it."""
    await conn.execute("DELETE FROM moderation_connections WHERE live_until <= now()")
    rows = await conn.fetch(
        """DELETE FROM flag_claims c
            WHERE c.until <= now()
               OR NOT EXISTS (SELECT 1 FROM moderation_connections m
                               WHERE m.moderator_id = c.moderator_id AND m.live_until > now())
        RETURNING c.flag_id"""
    )
    return [row["flag_id"] for row in rows]

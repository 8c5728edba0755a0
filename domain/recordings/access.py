"""Who may see a consult's recordings and download them: the consult's vet and owner, and
admins; anyone else gets NotFound, as if there were none. Every access is written to the audit
log in the transaction that allowed it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from domain import audit
from domain.audit import Actor
from domain.errors import Conflict, NotFound
from domain.identity import Role
from domain.identity.tokens import Principal
from domain.recordings import repository
from domain.recordings.repository import Recording
from domain.scheduling.consults import get_consult


@dataclass(frozen=True)
class RecordingFile:
    """One participant's whole recording: a WebM with their video and audio."""

    user_id: UUID
    object_key: str
    content_type: str
    duration_s: float


async def check_may_see(conn: asyncpg.Connection, principal: Principal, consult_id: UUID) -> None:
    if principal.role is Role.admin:
        return
    consult = await get_consult(conn, consult_id)
    if consult is None or principal.user_id not in (consult.vet_id, consult.owner_id):
        raise NotFound("no such consult")


async def recordings_of(
    conn: asyncpg.Connection, principal: Principal, actor: Actor, consult_id: UUID
) -> list[Recording]:
    async with conn.transaction():
        await check_may_see(conn, principal, consult_id)
        await audit.append(conn, actor, "recordings.list", "consult", consult_id)
        return await repository.of_consult(conn, consult_id)


async def files_to_download(
    conn: asyncpg.Connection, principal: Principal, actor: Actor, recording_id: UUID
) -> list[RecordingFile]:
    """The recording's files; Conflict while it is live, NotFound once purged."""
    async with conn.transaction():
        recording = await repository.get(conn, recording_id)
        if recording is None:
            raise NotFound("no such recording")
        await check_may_see(conn, principal, recording.consult_id)
        if recording.state.live:
            raise Conflict("the recording is still going on; download it once it has stopped")
        if recording.purged_at is not None:
            raise NotFound("the recording was deleted after its retention period")
        await audit.append(conn, actor, "recording.download", "recording", recording_id)
        rows = await conn.fetch(  # the hub's joined WebM files, or LiveKit's MP4 egresses
            """SELECT user_id, object_key, content_type, duration_s FROM recording_files
                WHERE recording_id = $1
               UNION ALL
               SELECT user_id, object_key, 'video/mp4', duration_s FROM recording_egresses
                WHERE recording_id = $1 AND status = 'complete'
               ORDER BY user_id, object_key""",
            recording_id,
        )
    return [RecordingFile(**dict(row)) for row in rows]

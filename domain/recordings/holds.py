"""Legal holds: an admin keeps a recording past its retention (a complaint, a claim, a court
order) and releases it later. Each hold and release is kept with its reason in
`recording_holds` (append-only) and written to the audit log; the consult's vet and owner may
not place one (Forbidden), anyone else is told there is no such recording.

A hold and the purge take the recording's row lock, so a hold either lands before the purge
reads the row (and the media stays) or after it has deleted the media (Conflict)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from domain import audit
from domain.audit import Actor
from domain.errors import Conflict, Forbidden, NotFound
from domain.identity import Role
from domain.identity.tokens import Principal
from domain.recordings import repository
from domain.recordings.access import check_may_see
from domain.recordings.repository import Recording

MAX_REASON = 500


async def set_legal_hold(
    conn: asyncpg.Connection,
    principal: Principal,
    actor: Actor,
    recording_id: UUID,
    *,
    held: bool,
    reason: str,
) -> Recording:
    """Place (`held`) or release the recording's legal hold; the recording as it now stands."""
    async with conn.transaction():
        recording = await repository.get(conn, recording_id)
        if recording is None:
            raise NotFound("no such recording")
        if principal.role is not Role.admin:
            await check_may_see(conn, principal, recording.consult_id)
            raise Forbidden("only an admin places or releases a legal hold")
        if recording.legal_hold == held and recording.purged_at is None:
            return recording  # already so: nothing to record (repeats cannot grow the ledger)
        updated = await repository.set_legal_hold(
            conn, recording_id, held, principal.user_id, reason
        )
        if updated is None:
            raise Conflict("the recording's media was deleted after its retention period")
        action = "recording.legal_hold" if held else "recording.legal_hold_released"
        await audit.append(conn, actor, action, "recording", recording_id)
    return updated

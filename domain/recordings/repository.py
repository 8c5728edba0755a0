"""Recording rows: one per recording of a consult, its state changes in `recording_events`
(append-only), and at most one live (recording or paused) per consult, which the database
enforces. `duration_s` counts only the time spent recording, summed as each stretch ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from domain.errors import Conflict
from domain.recordings.lifecycle import RecordingState

_COLUMNS = """id, consult_id, state, started_by, stopped_by, started_at, stopped_at,
              duration_s, legal_hold, purged_at"""


@dataclass(frozen=True)
class Recording:
    id: UUID
    consult_id: UUID
    state: RecordingState
    started_by: UUID
    stopped_by: UUID | None
    started_at: datetime
    stopped_at: datetime | None
    duration_s: float
    legal_hold: bool
    purged_at: datetime | None

    def public(self) -> dict[str, Any]:
        """The recording as `GET /v1/consults/{id}/recordings` lists it."""
        return {
            "id": str(self.id),
            "consult_id": str(self.consult_id),
            "state": self.state.value,
            "started_at": self.started_at.isoformat(),
            "stopped_at": None if self.stopped_at is None else self.stopped_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "legal_hold": self.legal_hold,
        }


def _recording(row: asyncpg.Record) -> Recording:
    return Recording(**{**dict(row), "state": RecordingState(row["state"])})


async def start(conn: asyncpg.Connection, consult_id: UUID, vet_id: UUID) -> Recording:
    """A new recording of the consult, recording; Conflict if one is live already."""
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction survives
            row = await conn.fetchrow(
                f"""INSERT INTO recordings (consult_id, state, started_by)
                    VALUES ($1, 'recording', $2) RETURNING {_COLUMNS}""",
                consult_id,
                vet_id,
            )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("the consult is being recorded already") from exc
    assert row is not None  # RETURNING of an insert
    recording = _recording(row)
    await _log(conn, recording.id, recording.state, vet_id, "started")
    return recording


async def live(conn: asyncpg.Connection, consult_id: UUID) -> Recording | None:
    """The consult's live recording, locked until the transaction ends."""
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM recordings
             WHERE consult_id = $1 AND state IN ('recording', 'paused') FOR UPDATE""",
        consult_id,
    )
    return None if row is None else _recording(row)


async def change_state(
    conn: asyncpg.Connection,
    recording: Recording,
    state: RecordingState,
    actor_id: UUID | None,
    reason: str,
) -> Recording:
    """Move a live recording to `state`, logging who or what did it and why."""
    row = await conn.fetchrow(
        f"""UPDATE recordings SET
                state = $2::text,
                duration_s = duration_s + CASE WHEN state = 'recording' AND $2 <> 'recording'
                    THEN extract(epoch FROM clock_timestamp() - resumed_at) ELSE 0 END,
                resumed_at = CASE WHEN $2 = 'recording'
                    THEN COALESCE(CASE WHEN state = 'recording' THEN resumed_at END,
                                  clock_timestamp()) END,
                stopped_at = CASE WHEN $2 IN ('recording', 'paused') THEN NULL
                    ELSE clock_timestamp() END,
                stopped_by = CASE WHEN $2 IN ('recording', 'paused') THEN NULL ELSE $3::uuid END
            WHERE id = $1 RETURNING {_COLUMNS}""",
        recording.id,
        state.value,
        actor_id,
    )
    assert row is not None  # the caller holds the live row locked
    await _log(conn, recording.id, state, actor_id, reason)
    return _recording(row)


async def _log(
    conn: asyncpg.Connection,
    recording_id: UUID,
    state: RecordingState,
    actor_id: UUID | None,
    reason: str,
) -> None:
    await conn.execute(
        """INSERT INTO recording_events (recording_id, state, actor_id, reason)
           VALUES ($1, $2, $3, $4)""",
        recording_id,
        state.value,
        actor_id,
        reason,
    )


async def of_consult(conn: asyncpg.Connection | asyncpg.Pool, consult_id: UUID) -> list[Recording]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM recordings WHERE consult_id = $1 ORDER BY started_at",
        consult_id,
    )
    return [_recording(row) for row in rows]


async def get(conn: asyncpg.Connection | asyncpg.Pool, recording_id: UUID) -> Recording | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM recordings WHERE id = $1", recording_id)
    return None if row is None else _recording(row)


async def next_take(conn: asyncpg.Connection | asyncpg.Pool, recording_id: UUID) -> int:
    """Number a new take of the recording's media (1, 2, ...)."""
    take: int = await conn.fetchval(
        "UPDATE recordings SET takes = takes + 1 WHERE id = $1 RETURNING takes", recording_id
    )
    return take


async def locked(conn: asyncpg.Connection, recording_id: UUID) -> Recording | None:
    """The recording, locked until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM recordings WHERE id = $1 FOR UPDATE", recording_id
    )
    return None if row is None else _recording(row)


async def set_legal_hold(
    conn: asyncpg.Connection, recording_id: UUID, held: bool, admin_id: UUID, reason: str
) -> Recording | None:
    """Set the hold of a recording whose media is kept, and keep who did it and why in the
    append-only `recording_holds`; None once purged. It waits on the row lock of a purge in
    progress (recordings.retention), and then sees it purged."""
    row = await conn.fetchrow(
        f"""UPDATE recordings SET legal_hold = $2 WHERE id = $1 AND purged_at IS NULL
            RETURNING {_COLUMNS}""",
        recording_id,
        held,
    )
    if row is None:
        return None
    await conn.execute(
        """INSERT INTO recording_holds (recording_id, held, actor_id, reason)
           VALUES ($1, $2, $3, $4)""",
        recording_id,
        held,
        admin_id,
        reason,
    )
    return _recording(row)


async def events(
    conn: asyncpg.Connection | asyncpg.Pool, recording_id: UUID
) -> list[tuple[RecordingState, UUID | None, str]]:
    """The recording's state changes, oldest first: (state, actor, reason)."""
    rows = await conn.fetch(
        "SELECT state, actor_id, reason FROM recording_events WHERE recording_id = $1 ORDER BY id",
        recording_id,
    )
    return [(RecordingState(row["state"]), row["actor_id"], row["reason"]) for row in rows]

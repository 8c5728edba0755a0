"""A LiveKit call's recording: LiveKit's participant egress writes each admitted person's
audio and video to S3 while the recording records (the hub's own recorder never sees LiveKit
media). Egress cannot pause, so a pause, a stop or an interruption stops every running egress
of the recording and a resume starts new ones; someone admitted while it records (who has
consented, or it would have paused) gets their own. LiveKit's `egress_ended` webhook
(rest.scheduling.livekit_webhooks) completes each row. The recording's row is locked while its
egresses are decided, so events arriving together start each person's egress once.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import cast

import asyncpg
from livekit import api

from domain.recordings import egresses, repository
from domain.recordings.lifecycle import RecordingState
from domain.recordings.repository import Recording
from integrations.livekit import EgressStorage, LiveKitBridge
from signaling.calls import Calls

log = logging.getLogger(__name__)


class LiveKitRecorder:
    def __init__(
        self, pool: asyncpg.Pool, calls: Calls, bridge: LiveKitBridge, storage: EgressStorage
    ) -> None:
        self._pool = pool
        self._calls = calls
        self._bridge = bridge
        self._storage = storage

    async def follow(self, recording: Recording) -> None:
        """Start or stop egresses as the recording's state (read again, locked) stands."""
        async with self._pool.acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            current = await repository.locked(conn, recording.id)
            if current is None:
                return
            running = await egresses.running(conn, current.id)
            if current.state is not RecordingState.recording:
                for egress in running:
                    with contextlib.suppress(api.TwirpError):  # it ended on its own already
                        await self._bridge.stop_egress(egress.egress_id)
                    await egresses.stop_asked(conn, egress.egress_id)
                return
            recorded = {egress.user_id for egress in running}
            for member in (await self._calls.members(current.consult_id)).values():
                if member.admitted and member.user_id not in recorded:
                    key = f"recordings/{current.id}/{secrets.token_urlsafe(24)}.mp4"
                    egress_id = await self._bridge.record_participant(
                        str(current.consult_id), str(member.user_id), key, self._storage
                    )
                    await egresses.add(conn, egress_id, current.id, member.user_id, key)
                    log.info(
                        "recording %s: egress %s for %s", current.id, egress_id, member.user_id
                    )

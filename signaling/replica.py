"""This replica's background part in `/rtc`: its channel on the replica bus, its lease
(signaling.leases), renewed every quarter of the lease, and the reaper, which every
REAP_EVERY_S releases what dead replicas held (their SFU rooms' live recordings end
`interrupted`, indexed as far as they reached S3, the rooms they left in Janus are destroyed,
and the rooms' members are told to connect to the media server anew) and lets go the members
whose reconnect grace ran out (signaling.calls.Calls.reap_due).

A replica that stops cleanly drops its members at once (the others reap them) and gives its
lease back.
"""

from __future__ import annotations

import contextlib
import logging
import time

from realtime.background import every
from signaling.bus import ReplicaBus
from signaling.calls import Calls
from signaling.leases import ReplicaLeases
from signaling.media_host import MediaHost
from signaling.recording import RecordingControl
from signaling.roster import Roster
from signaling.service import CallService
from signaling.sfu_router import SfuRouter

log = logging.getLogger(__name__)

REAP_EVERY_S = 1.0


class RtcReplica:
    def __init__(
        self,
        *,
        calls: Calls,
        leases: ReplicaLeases,
        bus: ReplicaBus,
        sfu: MediaHost,
        router: SfuRouter,
        roster: Roster,
        service: CallService,
        recording: RecordingControl,
    ) -> None:
        self._calls = calls
        self._leases = leases
        self._bus = bus
        self._sfu = sfu
        self._router = router
        self._roster = roster
        self._service = service
        self._recording = recording
        self._renewer = every(leases.renew_every_s, self._renew, "rtc-lease-renew")
        self._reaper = every(REAP_EVERY_S, self._reap, "rtc-reaper")

    async def start(self) -> None:
        await self._bus.start()
        await self._leases.renew()
        self._renewer.start()
        self._reaper.start()

    async def stop(self) -> None:
        await self._reaper.stop()
        await self._renewer.stop()
        for consult_id in self._sfu.recorded_consults():  # no other replica can go on with them
            with contextlib.suppress(Exception):
                await self._recording.interrupt(consult_id)
        await self._bus.stop()
        await self._sfu.close(self._router.lost)  # as if this replica had died, told at once
        with contextlib.suppress(Exception):
            await self._calls.orphan(self._bus.replica_id, int(time.time() * 1000))
        await self._leases.give_back()

    async def _renew(self) -> None:
        if await self._leases.renew():
            log.warning("rtc replica %s outlived its lease; restoring", self._bus.replica_id)
            await self._service.revive()
            await self._sfu.reclaim()

    async def _reap(self) -> None:
        try:
            await self._leases.reap(self._orphan)
        except Exception as exc:  # the departures are still due
            log.warning("rtc replica leases not reaped: %s", exc)
        for consult_id, member in await self._calls.reap_due():
            await self._roster.depart(consult_id, member)

    async def _orphan(self, replica: str, last_seen_ms: int) -> None:
        """The replica `replica` died (its lease expired): drop its members, free its rooms."""
        orphaned = await self._calls.orphan(replica, last_seen_ms)
        released = await self._sfu.claims.release(replica)
        for consult_id in released:  # their recordings died with the replica recording them
            if (recording_id := await self._recording.interrupt(consult_id)) is not None:
                await self._sfu.index_interrupted(recording_id)
            with contextlib.suppress(Exception):  # Janus out of reach: its rooms went with it
                await self._sfu.abandoned(consult_id)
            await self._router.lost(consult_id)
        if orphaned or released:
            log.warning(
                "rtc replica %s is gone: %d members dropped, %d sfu rooms released",
                replica,
                orphaned,
                len(released),
            )

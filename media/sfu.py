"""The hub's embedded media server: a relay SFU on aiortc, one :class:`SfuRoom` per consult.

Each participant has one peer connection with the room and offers first (`handle_offer`),
publishing its tracks. The room decodes each published track once (aiortc's MediaRelay) and
sends it to every other participant on a sendonly transceiver of that participant's
connection, encoding once per subscriber. Forwarded tracks are added and ended by
renegotiation: the room creates an offer, hands it to `on_offer`, and applies the
participant's reply given to `handle_answer`.

Negotiation contract, for the signaling layer that drives a room:

- The room offers to a participant only once its connection is `connected` (so it has
  applied the room's answer) and while no room offer to it is outstanding; changes made
  meanwhile are folded into the next offer. After a participant's own re-offer, the room may
  call `on_offer` as soon as `handle_offer` returns: deliver that answer first.
- The room is the impolite peer: a participant's offer while the room's offer to it is
  outstanding raises :class:`NegotiationConflict`; the participant, polite, rolls back and
  answers the room's offer instead.
- The room never trickles: its answers and offers carry all its candidates. Participants may
  trickle: pass each candidate to `add_ice_candidate` (those that arrive before the first
  offer are held until it does).
- `remove` closes the participant's connection; the others' copies of its tracks turn
  `inactive` in their next offer (m-lines are never reused, as in aiortc itself).
- A connection that fails is not repaired (aiortc has no ICE restart), nor is a participant
  whose `on_offer` raised (logged; it stays waiting for an answer): `remove` the participant
  and let it offer again. A first offer that fails leaves nobody in the room.
- Rooms bundle everything on one transport (max-bundle), as every browser offers.

Cost: all media is decoded once per published track and re-encoded (VP8) once per subscriber
stream, in this process. `bench/media/sfu_cost.py` measured, on a 2-core loopback machine with
synthetic low-detail video (a real camera costs more), in % of one core:
320x240 at 15 fps, 1 per published track and 1 per subscriber stream; 640x480 at 30 fps, 2.5
and 4; 1280x720 at 30 fps, 4.5 and 12. A three-person consult at 640x480 (three tracks, six
subscriber streams) takes about a third of a core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

log = logging.getLogger(__name__)

OfferCallback = Callable[[str, RTCSessionDescription], Awaitable[None]]


class NegotiationConflict(Exception):
    """A description that does not fit the participant's negotiation state (ack `conflict`)."""


class IceCandidateInit(TypedDict):
    """A trickled candidate as browsers send it (`RTCIceCandidateInit`)."""

    candidate: str
    sdpMid: NotRequired[str | None]
    sdpMLineIndex: NotRequired[int | None]


@dataclass(eq=False)
class _Participant:
    id: str
    pc: RTCPeerConnection
    published: list[MediaStreamTrack] = field(default_factory=list)
    forwarded: dict[MediaStreamTrack, RTCRtpTransceiver] = field(default_factory=dict)
    early_candidates: list[RTCIceCandidate | None] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SfuRoom:
    """Forwards every participant's tracks to every other participant of one consult."""

    def __init__(
        self, on_offer: OfferCallback, configuration: RTCConfiguration | None = None
    ) -> None:
        self._on_offer = on_offer
        self._configuration = configuration or RTCConfiguration(
            iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
        )
        self._relay = MediaRelay()
        self._participants: dict[str, _Participant] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def participant_ids(self) -> list[str]:
        return list(self._participants)

    async def handle_offer(
        self, participant_id: str, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        """Apply a participant's offer (joining it on the first) and return the room's answer."""
        if offer.type != "offer":
            raise ValueError(f"expected an offer, got {offer.type!r}")
        participant = self._participant(participant_id)
        try:
            answer = await self._answer(participant, offer)
        except Exception:
            if participant.pc.remoteDescription is None:  # a first offer that failed
                await self.remove(participant_id)
            raise
        self._renegotiate_everyone()
        return answer

    async def handle_answer(self, participant_id: str, answer: RTCSessionDescription) -> None:
        """Apply a participant's answer to the room's last offer."""
        if answer.type != "answer":
            raise ValueError(f"expected an answer, got {answer.type!r}")
        participant = self._existing(participant_id)
        async with participant.lock:
            if participant.pc.signalingState != "have-local-offer":
                raise NegotiationConflict(f"no offer to {participant_id} is outstanding")
            await participant.pc.setRemoteDescription(answer)
        self._renegotiate(participant)

    async def add_ice_candidate(
        self, participant_id: str, candidate: IceCandidateInit | None
    ) -> None:
        """Add a trickled candidate; None or an empty `candidate` ends the candidates."""
        ice_candidate = _parse_candidate(candidate)
        participant = self._participant(participant_id)
        async with participant.lock:
            if participant.pc.remoteDescription is None:
                participant.early_candidates.append(ice_candidate)
            else:
                await participant.pc.addIceCandidate(ice_candidate)

    async def remove(self, participant_id: str) -> None:
        """Close a participant's connection and end its tracks for the others."""
        participant = self._participants.pop(participant_id, None)
        if participant is None:
            return
        await participant.pc.close()
        self._renegotiate_everyone()

    async def close(self) -> None:
        """Remove everyone and stop the room's background work."""
        participants = list(self._participants.values())
        self._participants.clear()
        for participant in participants:
            await participant.pc.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _answer(
        self, participant: _Participant, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        async with participant.lock:
            pc = participant.pc
            if pc.signalingState != "stable":
                raise NegotiationConflict(f"the room's offer to {participant.id} is outstanding")
            await pc.setRemoteDescription(offer)
            for candidate in participant.early_candidates:
                await pc.addIceCandidate(candidate)
            participant.early_candidates.clear()
            await pc.setLocalDescription(await pc.createAnswer())
            answer: RTCSessionDescription = pc.localDescription
            return answer

    def _participant(self, participant_id: str) -> _Participant:
        participant = self._participants.get(participant_id)
        if participant is None:
            participant = _Participant(participant_id, RTCPeerConnection(self._configuration))
            self._participants[participant_id] = participant
            self._watch(participant)
        return participant

    def _existing(self, participant_id: str) -> _Participant:
        participant = self._participants.get(participant_id)
        if participant is None:
            raise KeyError(f"{participant_id} is not in the room")
        return participant

    def _watch(self, participant: _Participant) -> None:
        pc = participant.pc

        @pc.on("track")
        def publish(track: MediaStreamTrack) -> None:
            participant.published.append(track)
            self._spawn(self._drain(self._relay.subscribe(track, buffered=False)))

        @pc.on("connectionstatechange")
        def renegotiate_when_connected() -> None:
            if pc.connectionState == "connected":
                self._renegotiate(participant)

    async def _drain(self, track: MediaStreamTrack) -> None:
        """Read a published track even with no subscriber, so its frames never pile up."""
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()

    def _renegotiate_everyone(self) -> None:
        for participant in self._participants.values():
            self._renegotiate(participant)

    def _renegotiate(self, participant: _Participant) -> None:
        self._spawn(self._offer_changes(participant))

    async def _offer_changes(self, participant: _Participant) -> None:
        async with participant.lock:
            pc = participant.pc
            if pc.connectionState != "connected" or pc.signalingState != "stable":
                return
            if not await self._update_forwarded(participant):
                return
            await pc.setLocalDescription(await pc.createOffer())
            offer: RTCSessionDescription = pc.localDescription
        await self._on_offer(participant.id, offer)

    async def _update_forwarded(self, participant: _Participant) -> bool:
        """Match the participant's sendonly transceivers to the others' tracks; say if changed."""
        wanted = [
            track
            for other in self._participants.values()
            if other is not participant
            for track in other.published
        ]
        added = [track for track in wanted if track not in participant.forwarded]
        ended = [track for track in participant.forwarded if track not in wanted]
        for track in added:
            participant.forwarded[track] = participant.pc.addTransceiver(
                self._relay.subscribe(track, buffered=False), direction="sendonly"
            )
        for track in ended:
            transceiver = participant.forwarded.pop(track)
            transceiver.direction = "inactive"
            if transceiver.sender.track is not None:
                transceiver.sender.track.stop()
            await transceiver.stop()
        return bool(added or ended)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("SFU room task failed", exc_info=error)


def _parse_candidate(candidate: IceCandidateInit | None) -> RTCIceCandidate | None:
    if candidate is None or not candidate["candidate"]:
        return None
    line = candidate["candidate"].removeprefix("candidate:")
    ice_candidate: RTCIceCandidate = candidate_from_sdp(line)
    ice_candidate.sdpMid = candidate.get("sdpMid")
    ice_candidate.sdpMLineIndex = candidate.get("sdpMLineIndex")
    if ice_candidate.sdpMid is None and ice_candidate.sdpMLineIndex is None:
        raise ValueError("a candidate needs sdpMid or sdpMLineIndex")
    return ice_candidate

"""The hub's embedded media server: a forwarding SFU on aiortc, one :class:`SfuRoom` per consult.

Each participant has one peer connection with the room and offers first (`handle_offer`),
publishing its tracks. The room never decodes nor encodes: it takes each published track's
encoded frames before aiortc's decoder and hands them, as they are, to a sendonly transceiver
of every other participant's connection (`media.forwarding`). Forwarded tracks are added and
ended by renegotiation: the room creates an offer, hands it to `on_offer`, and applies the
participant's reply given to `handle_answer`.

Negotiation contract, for the signaling layer that drives a room:

- The room offers to a participant only once its connection is `connected` (so it has
  applied the room's answer) and while no room offer to it is outstanding; changes made
  meanwhile are folded into the next offer. After a participant's own re-offer, the room may
  call `on_offer` as soon as `handle_offer` returns: deliver that answer first.
- The room is the impolite peer: a participant's offer while the room's to it is out raises
  :class:`NegotiationConflict`; the participant rolls back and answers the room's instead.
- The room never trickles (its descriptions carry all its candidates); participants may, with
  `add_ice_candidate` (before the first offer, at most MAX_EARLY_CANDIDATES are held).
- `remove` closes the participant's connection; the others' copies of its tracks turn
  `inactive` in their next offer (m-lines are never reused, as in aiortc itself).
- A forwarded track's stream id (`a=msid`) is its publisher's participant id, so a
  publisher's audio and video reach subscribers as one, named stream.
- A connection is never repaired (aiortc has no ICE restart): an offer with new ICE
  credentials is a new connection and replaces the participant's old one. A participant whose
  `on_offer` raised is logged and left waiting. A failed first offer leaves nobody behind.
- Offers number codecs and header extensions as the participant does (media.sdp_numbering).
- Media is VP8 and Opus end to end (frames are forwarded as they are; an offer without them
  raises aiortc's OperationError), bundled on one transport (max-bundle: without it aiortc
  sends only the first of several video tracks, aiortc issue 1414). No simulcast: answers cap
  each publisher's video (`b=AS`, media.sdp_rules) and every subscriber gets that one stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from media import _aiortc
from media.forwarding import Publication
from media.sdp_numbering import in_their_numbering
from media.sdp_rules import (
    IceCandidateInit,
    cap_video,
    capabilities,
    forward_as_is,
    new_connection,
    parse_candidate,
)

log = logging.getLogger(__name__)

OfferCallback = Callable[[str, RTCSessionDescription], Awaitable[None]]
PublishCallback = Callable[[str, "Source"], None]  # a participant published a track

MAX_EARLY_CANDIDATES = 100  # a browser gathers a few per network interface and m-line


class Source(Protocol):
    """What the room forwards to subscribers from one published track: `subscribe` gives a
    subscriber its copy, `watch_sender` takes the keyframe requests of the sender sending one,
    `request_keyframe` has a keyframe ready for subscribers about to start (audio ignores it)."""

    def subscribe(self) -> MediaStreamTrack: ...
    def watch_sender(self, sender: RTCRtpSender) -> None: ...
    def request_keyframe(self) -> None: ...
    def close(self) -> None: ...


class TooManyCandidates(ValueError):
    """More than MAX_EARLY_CANDIDATES candidates before the participant's first offer."""


class NegotiationConflict(Exception):
    """A description that does not fit the participant's negotiation state (ack `conflict`)."""


@dataclass(eq=False)
class _Participant:
    id: str
    pc: RTCPeerConnection
    published: dict[MediaStreamTrack, Source] = field(default_factory=dict)
    forwarded: dict[MediaStreamTrack, RTCRtpTransceiver] = field(default_factory=dict)
    early_candidates: list[RTCIceCandidate | None] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SfuRoom:
    """Forwards every participant's tracks to every other participant of one consult."""

    def __init__(
        self,
        on_offer: OfferCallback,
        configuration: RTCConfiguration | None = None,
        on_publish: PublishCallback | None = None,
    ) -> None:
        self._on_offer = on_offer
        self._on_publish = on_publish
        self._configuration = configuration or RTCConfiguration(
            iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
        )
        self._participants: dict[str, _Participant] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def participant_ids(self) -> list[str]:
        return list(self._participants)

    def publications(self, participant_id: str) -> list[Source]:
        """What a participant publishes now (a recorder taps these)."""
        participant = self._participants.get(participant_id)
        return [] if participant is None else list(participant.published.values())

    async def handle_offer(
        self, participant_id: str, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        """Apply a participant's offer (joining it on the first) and return the room's answer."""
        if offer.type != "offer":
            raise ValueError(f"expected an offer, got {offer.type!r}")
        known = self._participants.get(participant_id)
        if known and new_connection(known.pc.remoteDescription, offer):
            await self.remove(participant_id)
        participant = self._participant(participant_id)
        joining = participant.pc.remoteDescription is None
        for other in self._participants.values() if joining else ():
            for source in other.published.values():  # ready once the joiner subscribes
                source.request_keyframe()
        try:
            answer = await self._answer(participant, offer)
        except Exception:
            if joining:  # a first offer that failed
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
        ice_candidate = parse_candidate(candidate)
        participant = self._participant(participant_id)
        async with participant.lock:
            if participant.pc.remoteDescription is None:
                if len(participant.early_candidates) >= MAX_EARLY_CANDIDATES:
                    raise TooManyCandidates(
                        f"at most {MAX_EARLY_CANDIDATES} candidates before the first offer"
                    )
                participant.early_candidates.append(ice_candidate)
            else:
                await participant.pc.addIceCandidate(ice_candidate)

    async def remove(self, participant_id: str) -> None:
        """Close a participant's connection and end its tracks for the others."""
        participant = self._participants.pop(participant_id, None)
        if participant is None:
            return
        await self._close(participant)
        self._renegotiate_everyone()

    async def close(self) -> None:
        """Remove everyone and stop the room's background work."""
        participants = list(self._participants.values())
        self._participants.clear()
        for participant in participants:
            await self._close(participant)
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
            forward_as_is(pc)
            for candidate in participant.early_candidates:
                await pc.addIceCandidate(candidate)
            participant.early_candidates.clear()
            await pc.setLocalDescription(await pc.createAnswer())
            return RTCSessionDescription(cap_video(pc.localDescription.sdp), "answer")

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
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            source = participant.published[track] = self._publish(track, receiver)
            if self._on_publish is not None:
                self._on_publish(participant.id, source)

        @pc.on("connectionstatechange")
        def renegotiate_when_connected() -> None:
            if pc.connectionState == "connected":
                self._renegotiate(participant)

    def _publish(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> Source:
        return Publication(receiver, track.kind)

    async def _close(self, participant: _Participant) -> None:
        await participant.pc.close()
        for source in participant.published.values():
            source.close()

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
            offer = in_their_numbering(await pc.createOffer(), pc.remoteDescription)
            await pc.setLocalDescription(offer)
            offer = pc.localDescription  # with the room's candidates
        await self._on_offer(participant.id, offer)

    async def _update_forwarded(self, participant: _Participant) -> bool:
        """Match the participant's sendonly transceivers to the others' tracks; say if changed."""
        wanted = {
            track: (other.id, source)
            for other in self._participants.values()
            if other is not participant
            for track, source in other.published.items()
        }
        added = [track for track in wanted if track not in participant.forwarded]
        ended = [track for track in participant.forwarded if track not in wanted]
        for track in added:
            publisher, source = wanted[track]
            transceiver = participant.pc.addTransceiver(source.subscribe(), direction="sendonly")
            transceiver.setCodecPreferences(capabilities(transceiver.kind))
            _aiortc.name_stream(transceiver.sender, publisher)
            source.watch_sender(transceiver.sender)
            participant.forwarded[track] = transceiver
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

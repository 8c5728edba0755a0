"""The `/rtc` namespace of CONTRACT.md: consult calls, lobby and admit, offer/answer/ICE relay,
the hub's SFU, LiveKit tokens and call quality.

- `join {consult_id, mode?: "sfu"}`: the consult's vet, owner and invitees only. The vet is in
  at once; everyone else waits in the lobby (`waiting: true`, no peers) until the vet admits
  them, and the vet gets `lobby {consult_id, user_id, name}` (when they wait, and for everyone
  waiting when the vet joins; the ack's `lobby` lists them too). Members who are in get
  `peer_joined` when someone else is in. A rejoin (same user, new connection) keeps the place
  and admission; the others get `peer_joined` with `rejoined: true`, so they renegotiate.
- `admit {consult_id, user_id}` (the vet): the user gets `admitted {consult_id, peers, mode,
  polite, livekit?}`.
- `signal {consult_id, to, description?, candidate?}` goes to `to` as `signal {consult_id,
  from, ...}`; `to: "sfu"` goes to the consult's SfuRoom (sfu mode), whose answers and offers
  come back as `signal {from: "sfu"}`; a refused forwarded SFU signal comes back as
  `signal_failed {consult_id, to: "sfu", error}`.
- A dropped connection keeps its place for RECONNECT_GRACE_S (30 s); then, or at `leave`, the
  others get `peer_left` (the vet gets `lobby_left` for someone who was still waiting).
- A replica that dies outright drops all its connections at once: each replica holds a lease
  (signaling.leases) and, once a dead one's lease expires, the live ones treat its members as
  dropped when it last renewed (they leave after the grace unless they rejoined elsewhere) and
  release the SFU rooms pinned to it. A replica that stops cleanly drops its members at once.
- `stats` -> the others get `quality {consult_id, user_id, level}` (signaling.quality).
- `consent` and `record` answer `unavailable` until recordings exist.

Call state lives in Redis (signaling.calls) and events reach members on any replica through
signaling.bus; the consult's SfuRoom is pinned to one replica (signaling.sfu_host).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
from aiortc import RTCSessionDescription
from pydantic import Field

from domain.consults import Consult, ParticipantRole, get_consult
from media.livekit import LiveKitBridge, LiveKitJoin
from media.sfu import IceCandidateInit, NegotiationConflict
from realtime.namespace import AuthenticatedNamespace
from realtime.protocol import Ack, ErrorCode, EventError, Payload, event, ok
from signaling.bus import ReplicaBus
from signaling.calls import Calls, Member
from signaling.leases import ReplicaLeases
from signaling.modes import Mode, choose_mode, is_polite
from signaling.quality import quality_level
from signaling.sdp import InvalidSdp, SdpTooLarge, check_sdp
from signaling.sfu_host import SfuHost
from signaling.turn import ice_servers

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


REAP_EVERY_S = 1.0
MAX_CANDIDATE_CHARS = 2048


class ConsultPayload(Payload):
    consult_id: UUID


class JoinPayload(ConsultPayload):
    mode: Literal["sfu"] | None = None


class AdmitPayload(ConsultPayload):
    user_id: UUID


class Description(Payload):
    type: Literal["offer", "answer"]
    sdp: str


class IceCandidate(Payload):
    """A trickled candidate (`RTCIceCandidateInit`); an empty `candidate` ends them."""

    candidate: str = Field(max_length=MAX_CANDIDATE_CHARS)
    sdpMid: str | None = Field(default=None, max_length=64)  # the browser's names
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=1024)

    def init(self) -> IceCandidateInit:
        return {
            "candidate": self.candidate,
            "sdpMid": self.sdpMid,
            "sdpMLineIndex": self.sdpMLineIndex,
        }


class SignalPayload(ConsultPayload):
    to: Literal["sfu"] | UUID
    description: Description | None = None
    candidate: IceCandidate | None = None


class StatsPayload(ConsultPayload):
    """A client's measures of its call: round-trip time, packet loss as a fraction (lost over
    sent, 0-1) and jitter."""

    rtt_ms: float = Field(ge=0, le=600_000)
    packet_loss: float = Field(ge=0, le=1)
    jitter_ms: float = Field(ge=0, le=600_000)


def _sfu_refusal(error: Exception) -> EventError:
    if isinstance(error, NegotiationConflict):
        return EventError(ErrorCode.conflict, str(error))
    if isinstance(error, KeyError):
        return EventError(ErrorCode.conflict, "send the media server an offer first")
    return EventError(ErrorCode.invalid, f"the media server refused this: {error}")


class RtcNamespace(AuthenticatedNamespace):
    def __init__(
        self,
        *,
        jwt_secret: str,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        prefix: str,
        replica_id: str,
        turn_urls: Sequence[str],
        turn_secret: str,
        livekit: LiveKitBridge | None,
    ) -> None:
        super().__init__("/rtc", jwt_secret=jwt_secret)
        self._pool = pool
        self._calls = Calls(redis, prefix)
        self._bus = ReplicaBus(redis, prefix, replica_id, self._emit_here, self._run_command)
        self._sfu = SfuHost(redis, prefix, replica_id, self._deliver)
        self._replica_id = replica_id
        self._turn_urls = list(turn_urls)
        self._turn_secret = turn_secret
        self._livekit = livekit
        self._leases = ReplicaLeases(redis, prefix, replica_id, self._orphan, self._revived)
        self._joined: defaultdict[str, set[UUID]] = defaultdict(set)  # sid -> consults
        self._users: dict[str, UUID] = {}  # sid -> user, for the sids in _joined
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._bus.start()
        await self._leases.start()
        self._reaper = asyncio.create_task(self._reap_forever(), name="rtc-reaper")

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self._bus.stop()
        await self._sfu.close()
        # Going away cleanly: this replica's members are dropped now (the others reap them).
        with contextlib.suppress(Exception):
            await self._calls.orphan(self._replica_id, _now_ms())
        await self._leases.stop()

    # events

    @event("join", JoinPayload)
    async def join(self, sid: str, payload: JoinPayload) -> Ack:
        principal = await self.principal(sid)
        consult_id = payload.consult_id
        consult = await self._consult(consult_id)
        role = _role_in(consult, principal.user_id)
        mode = await self._calls.mode(
            consult_id,
            choose_mode(
                len(consult.participants),
                wants_sfu=payload.mode == "sfu",
                livekit_configured=self._livekit is not None,
            ),
        )
        previous = await self._calls.member(consult_id, principal.user_id)
        admitted = role is ParticipantRole.vet or (previous is not None and previous.admitted)
        member = Member(
            user_id=principal.user_id,
            role=role,
            name=principal.name,
            admitted=admitted,
            replica=self._replica_id,
            sid=sid,
        )
        livekit = await self._livekit_join(mode, consult_id, member) if admitted else None
        await self._calls.put(consult_id, member)
        self._joined[sid].add(consult_id)
        self._users[sid] = principal.user_id
        rejoined = previous is not None and previous.sid != sid
        if rejoined and mode is Mode.sfu:
            await self._sfu_remove(consult_id, principal.user_id)  # its old connection is dead
        others = await self._others(consult_id, member)
        waiting = [m for m in others if not m.admitted]
        if previous is None or rejoined:  # a repeated join on one connection tells nobody
            await self._announce(consult_id, member, others, rejoined=rejoined)
        if role is ParticipantRole.vet:
            for person in waiting:
                await self.emit("lobby", _lobby_entry(consult_id, person), to=sid)
        ack = ok(
            consult_id=str(consult_id),
            mode=mode.value,
            ice_servers=ice_servers(self._turn_urls, self._turn_secret, str(principal.user_id)),
            you=member.peer(),
            peers=[m.peer() for m in _admitted(others)] if admitted else [],
            waiting=not admitted,
            polite=is_polite(mode, role),
        )
        if role is ParticipantRole.vet:
            ack["lobby"] = [_lobby_entry(consult_id, person) for person in waiting]
        if livekit is not None:
            ack["livekit"] = livekit
        return ack

    @event("admit", AdmitPayload)
    async def admit(self, sid: str, payload: AdmitPayload) -> Ack:
        consult_id = payload.consult_id
        caller = await self._member(sid, consult_id)
        if caller.role is not ParticipantRole.vet:
            raise EventError(ErrorCode.forbidden, "only the consult's vet admits")
        person = await self._calls.member(consult_id, payload.user_id)
        if person is None:
            raise EventError(ErrorCode.not_found, "nobody by that id is waiting")
        if person.admitted:
            return ok()
        mode = await self._calls.current_mode(consult_id) or Mode.p2p
        person = person.model_copy(update={"admitted": True})
        livekit = await self._livekit_join(mode, consult_id, person)
        await self._calls.put(consult_id, person)
        others = await self._others(consult_id, person)
        admitted: dict[str, Any] = {
            "consult_id": str(consult_id),
            "peers": [m.peer() for m in _admitted(others)],
            "mode": mode.value,
            "polite": is_polite(mode, person.role),
        }
        if livekit is not None:
            admitted["livekit"] = livekit
        await self._bus.emit(person, "admitted", admitted)
        joined = {"consult_id": str(consult_id), **person.peer()}
        await self._emit_each(_admitted(others), "peer_joined", joined)
        return ok()

    @event("signal", SignalPayload)
    async def signal(self, sid: str, payload: SignalPayload) -> Ack:
        if payload.description is None and payload.candidate is None:
            raise EventError(ErrorCode.invalid, "a signal carries a description or a candidate")
        if payload.description is not None:
            try:
                check_sdp(payload.description.sdp)
            except SdpTooLarge as exc:
                raise EventError(ErrorCode.too_large, str(exc)) from exc
            except InvalidSdp as exc:
                raise EventError(ErrorCode.invalid, str(exc)) from exc
        consult_id = payload.consult_id
        caller = await self._member(sid, consult_id)
        if not caller.admitted:
            raise EventError(ErrorCode.forbidden, "wait until the vet admits you")
        if payload.to == "sfu":
            await self._signal_sfu(consult_id, caller, payload)
            return ok()
        if payload.to == caller.user_id:
            raise EventError(ErrorCode.invalid, "a signal to yourself")
        target = await self._calls.member(consult_id, payload.to)
        if target is None or not target.admitted:
            raise EventError(ErrorCode.not_found, "no such peer in this call")
        relayed: dict[str, Any] = {"consult_id": str(consult_id), "from": str(caller.user_id)}
        if payload.description is not None:
            relayed["description"] = payload.description.model_dump()
        if payload.candidate is not None:
            relayed["candidate"] = payload.candidate.model_dump(exclude_none=True)
        await self._bus.emit(target, "signal", relayed)
        return ok()

    @event("leave", ConsultPayload)
    async def leave(self, sid: str, payload: ConsultPayload) -> Ack:
        principal = await self.principal(sid)
        self._joined[sid].discard(payload.consult_id)
        member = await self._calls.member(payload.consult_id, principal.user_id)
        if member is not None and member.sid == sid:
            removed = await self._calls.remove(payload.consult_id, principal.user_id)
            if removed is not None:
                await self._departed(payload.consult_id, removed)
        return ok()

    @event("stats", StatsPayload)
    async def stats(self, sid: str, payload: StatsPayload) -> Ack:
        caller = await self._member(sid, payload.consult_id)
        if not caller.admitted:
            raise EventError(ErrorCode.forbidden, "wait until the vet admits you")
        level = quality_level(payload.rtt_ms, payload.packet_loss, payload.jitter_ms)
        quality = {
            "consult_id": str(payload.consult_id),
            "user_id": str(caller.user_id),
            "level": level,
        }
        others = await self._others(payload.consult_id, caller)
        await self._emit_each(_admitted(others), "quality", quality)
        return ok(level=level)

    @event("consent", ConsultPayload)
    async def consent(self, sid: str, payload: ConsultPayload) -> Ack:
        raise EventError(ErrorCode.unavailable, "recording is not available yet")

    @event("record", ConsultPayload)
    async def record(self, sid: str, payload: ConsultPayload) -> Ack:
        raise EventError(ErrorCode.unavailable, "recording is not available yet")

    async def on_disconnect(self, sid: str, *_: Any) -> None:
        principal = await self.principal(sid)
        self._users.pop(sid, None)
        for consult_id in self._joined.pop(sid, set()):
            await self._calls.drop(consult_id, principal.user_id, sid)

    # helpers

    async def _consult(self, consult_id: UUID) -> Consult:
        consult = await get_consult(self._pool, consult_id)
        if consult is None:
            raise EventError(ErrorCode.not_found, "no such consult")
        return consult

    async def _member(self, sid: str, consult_id: UUID) -> Member:
        """The caller's place in the call, which this connection must hold."""
        principal = await self.principal(sid)
        member = await self._calls.member(consult_id, principal.user_id)
        if member is not None and member.sid == sid:
            return member
        _role_in(await self._consult(consult_id), principal.user_id)
        raise EventError(ErrorCode.forbidden, "join the call first")

    async def _announce(
        self, consult_id: UUID, member: Member, others: list[Member], *, rejoined: bool
    ) -> None:
        """`peer_joined` to those in the call for a member who is in, else `lobby` to the vet."""
        if member.admitted:
            joined: dict[str, Any] = {"consult_id": str(consult_id), **member.peer()}
            if rejoined:
                joined["rejoined"] = True
            await self._emit_each(_admitted(others), "peer_joined", joined)
        else:
            await self._emit_each(_vets(others), "lobby", _lobby_entry(consult_id, member))

    async def _others(self, consult_id: UUID, member: Member) -> list[Member]:
        members = await self._calls.members(consult_id)
        return [other for user, other in members.items() if user != member.user_id]

    async def _livekit_join(
        self, mode: Mode, consult_id: UUID, member: Member
    ) -> LiveKitJoin | None:
        """The `livekit` field for an admitted member of a livekit-mode call (vets: admin)."""
        if mode is not Mode.livekit or self._livekit is None:
            return None
        return await self._livekit.join(
            str(consult_id),
            str(member.user_id),
            name=member.name,
            admin=member.role is ParticipantRole.vet,
        )

    async def _signal_sfu(self, consult_id: UUID, caller: Member, payload: SignalPayload) -> None:
        if await self._calls.current_mode(consult_id) is not Mode.sfu:
            raise EventError(ErrorCode.invalid, "this call is not in sfu mode")
        command: dict[str, Any] = {
            "op": "sfu_signal",
            "consult_id": str(consult_id),
            "user_id": str(caller.user_id),
            "description": payload.description.model_dump() if payload.description else None,
            "candidate": payload.candidate.init() if payload.candidate else None,
        }
        host = await self._sfu.claim(consult_id)
        if host != self._replica_id:
            await self._bus.send(host, command)
            return
        try:
            await self._sfu_signal(command)
        except Exception as error:
            raise _sfu_refusal(error) from error

    async def _sfu_signal(self, command: dict[str, Any]) -> None:
        described = command["description"]
        await self._sfu.signal(
            UUID(command["consult_id"]),
            UUID(command["user_id"]),
            RTCSessionDescription(described["sdp"], described["type"]) if described else None,
            command["candidate"],
        )

    async def _sfu_remove(self, consult_id: UUID, user: UUID) -> None:
        host = await self._sfu.host_of(consult_id)
        if host is not None:
            command = {"op": "sfu_remove", "consult_id": str(consult_id), "user_id": str(user)}
            await self._bus.send(host, command)

    async def _run_command(self, command: dict[str, Any]) -> None:
        """A command sent by ReplicaBus.send (from this replica or another)."""
        consult_id, user = UUID(command["consult_id"]), UUID(command["user_id"])
        if command["op"] == "sfu_remove":
            await self._sfu.remove(consult_id, user)
            return
        try:
            await self._sfu_signal(command)
        except Exception as error:
            refusal = _sfu_refusal(error)
            failed = {"consult_id": str(consult_id), "to": "sfu", **refusal.ack()}
            await self._deliver(consult_id, user, "signal_failed", failed)

    async def _departed(self, consult_id: UUID, member: Member) -> None:
        """Tell the others that `member` has left the call for good, and tidy up after it."""
        others = list((await self._calls.members(consult_id)).values())
        left = {"consult_id": str(consult_id), "user_id": str(member.user_id)}
        if member.admitted:
            await self._emit_each(_admitted(others), "peer_left", left)
        else:
            await self._emit_each(_vets(others), "lobby_left", left)
        await self._sfu_remove(consult_id, member.user_id)
        await self._calls.end_if_empty(consult_id)

    async def _orphan(self, replica: str, last_seen_ms: int) -> None:
        """The replica `replica` died (its lease expired): drop its members, free its rooms."""
        orphaned = await self._calls.orphan(replica, last_seen_ms)
        released = await self._sfu.release(replica)
        if orphaned or released:
            log.warning(
                "rtc replica %s is gone: %d members dropped, %d sfu rooms released",
                replica,
                orphaned,
                len(released),
            )

    async def _revived(self) -> None:
        """This replica's lease had been reaped while it stalled: keep its live members."""
        for sid, consults in list(self._joined.items()):
            user = self._users.get(sid)
            if user is not None:
                for consult_id in list(consults):
                    await self._calls.revive(consult_id, user, sid)
        await self._sfu.reclaim()

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_EVERY_S)
            try:
                await self._leases.reap()
            except Exception as exc:
                log.warning("rtc replica leases not reaped: %s", exc)
            try:
                for consult_id, member in await self._calls.reap_due():
                    await self._departed(consult_id, member)
            except Exception as exc:
                log.warning("rtc departures not reaped: %s", exc)

    async def _deliver(self, consult_id: UUID, user: UUID, name: str, data: dict[str, Any]) -> None:
        member = await self._calls.member(consult_id, user)
        if member is not None:
            await self._bus.emit(member, name, data)

    async def _emit_each(self, members: Sequence[Member], name: str, data: dict[str, Any]) -> None:
        for member in members:
            await self._bus.emit(member, name, data)

    async def _emit_here(self, sid: str, name: str, data: dict[str, Any]) -> None:
        await self.emit(name, data, to=sid)


def _role_in(consult: Consult, user: UUID) -> ParticipantRole:
    """The user's role in the consult's call, or the refusal of a non-participant."""
    if consult.booking_status == "cancelled":
        raise EventError(ErrorCode.forbidden, "this consult's booking was cancelled")
    for participant in consult.participants:
        if participant.user_id == user:
            return participant.role
    raise EventError(ErrorCode.forbidden, "you are not a participant of this consult")


def _admitted(members: Sequence[Member]) -> list[Member]:
    return [member for member in members if member.admitted]


def _vets(members: Sequence[Member]) -> list[Member]:
    return [member for member in members if member.role is ParticipantRole.vet]


def _lobby_entry(consult_id: UUID, member: Member) -> dict[str, str]:
    return {"consult_id": str(consult_id), "user_id": str(member.user_id), "name": member.name}

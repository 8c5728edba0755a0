"""What `/rtc` does for each event, free of Socket.IO: the namespace parses, calls one method
here and maps its outcome (a dataclass, or a domain error) to the ack.

- `join`: the consult's vet, owner and invitees only (signaling.lobby bounds the invitees).
  The vet is in at once; everyone else waits in the lobby until the vet admits them, and the
  vet learns who waits (`lobby` events, and the ack's `lobby`). A rejoin (same user, new
  connection) keeps the place and admission; the others get `peer_joined` with
  `rejoined: true`, so they renegotiate. The call's mode is chosen by the first join
  (signaling.modes; `mode: "sfu"` counts only from the vet); a recording moves a p2p call to
  sfu (signaling.recording).
- `relay`: a signal to a peer who is in, or to the media server (`to: "sfu"`,
  signaling.sfu_router).
- `leave` at once, or `drop` (the connection closed): the member keeps their place for the
  reconnect grace, then leaves (signaling.replica reaps them, signaling.roster tells the others).
- `stats`: the others get the caller's `quality` level (signaling.quality).
- `consent`, `record`: recording, gated by everyone's consent (signaling.recording).

Call state lives in Redis (signaling.calls), so members on any replica meet; this service
keeps only which of this replica's connections are in which calls, to restore them should its
lease have been reaped while it stalled (signaling.replica).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg
from aiortc import RTCSessionDescription

from domain.audit import Actor
from domain.errors import Forbidden, Invalid, NotFound
from domain.scheduling.consults import Consult, ParticipantRole, get_consult, role_in
from integrations.livekit import LiveKitJoin
from media.sdp_rules import IceCandidateInit
from signaling.bus import ReplicaBus
from signaling.calls import Calls, Member
from signaling.lobby import Lobby
from signaling.media_host import Pc
from signaling.modes import Mode, choose_mode, is_polite
from signaling.quality import quality_level
from signaling.recording import RecordingControl
from signaling.roster import Roster, admitted
from signaling.sdp import check_sdp
from signaling.sfu_router import SfuRouter
from signaling.turn import IceServer, TurnServers


@dataclass(frozen=True)
class Joined:
    """A join's outcome: the call as the member sees it."""

    mode: Mode
    ice_servers: list[IceServer]
    you: Member
    peers: list[Member]  # those in the call, for a member who is in (else none)
    polite: bool
    lobby: list[Member] | None  # for the vet: who waits
    livekit: LiveKitJoin | None
    sfu_connections: Literal[1, 2]  # how many connections a member opens in sfu mode

    @property
    def waiting(self) -> bool:
        return not self.you.admitted


class CallService:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        calls: Calls,
        bus: ReplicaBus,
        roster: Roster,
        lobby: Lobby,
        sfu: SfuRouter,
        recording: RecordingControl,
        turn: TurnServers,
        livekit_configured: bool,
    ) -> None:
        self._pool = pool
        self._calls = calls
        self._bus = bus
        self._roster = roster
        self._lobby = lobby
        self._sfu = sfu
        self._recording = recording
        self._turn = turn
        self._livekit_configured = livekit_configured
        self._joined: defaultdict[str, set[UUID]] = defaultdict(set)  # sid -> consults
        self._users: dict[str, UUID] = {}  # sid -> user, for the sids in _joined

    async def join(
        self, sid: str, user_id: UUID, name: str, consult_id: UUID, *, wants_sfu: bool
    ) -> Joined:
        consult = await self._consult(consult_id)
        role = role_in(consult, user_id)
        previous = await self._calls.member(consult_id, user_id)
        if role is ParticipantRole.invited and previous is None:
            await self._lobby.check_room_for_invitee(consult_id)
        mode = await self._calls.mode(
            consult_id,
            choose_mode(
                len(consult.participants),
                wants_sfu=wants_sfu and role is ParticipantRole.vet,
                livekit_configured=self._livekit_configured,
            ),
        )
        # A repeated join on the same connection keeps what that connection had set.
        kept = previous if previous is not None and previous.sid == sid else None
        member = Member(
            user_id=user_id,
            role=role,
            name=name,
            admitted=role is ParticipantRole.vet or (previous is not None and previous.admitted),
            replica=self._bus.replica_id,
            sid=sid,
            # A new connection starts with both on; its page says otherwise with `media`.
            audio=kept.audio if kept else True,
            video=kept.video if kept else True,
        )
        livekit = (
            await self._lobby.livekit_join(mode, consult_id, member) if member.admitted else None
        )
        await self._calls.put(consult_id, member)
        # A recording starting meanwhile may have moved the call to sfu and told those in it
        # before this member was: the mode as it stands now that they are in.
        mode = await self._calls.current_mode(consult_id) or mode
        self._joined[sid].add(consult_id)
        self._users[sid] = user_id
        rejoined = previous is not None and kept is None
        if rejoined and mode is Mode.sfu:
            await self._sfu.remove(consult_id, user_id)  # its old connection is dead
        others = await self._roster.others(consult_id, member)
        if previous is None or rejoined:  # a repeated join on one connection tells nobody
            await self._roster.announce(consult_id, member, others, rejoined=rejoined)
        if member.admitted:
            await self._roster.show_media(consult_id, member, others)
        return Joined(
            mode=mode,
            ice_servers=self._turn.ice_servers(str(user_id)),
            you=member,
            peers=admitted(others) if member.admitted else [],
            polite=is_polite(mode, role),
            lobby=[m for m in others if not m.admitted] if role is ParticipantRole.vet else None,
            livekit=livekit,
            sfu_connections=self._sfu.connections,
        )

    async def admit(self, sid: str, user_id: UUID, consult_id: UUID, person: UUID) -> None:
        await self._lobby.admit(consult_id, await self._place(sid, user_id, consult_id), person)

    async def deny(
        self, sid: str, user_id: UUID, consult_id: UUID, person: UUID, reason: str | None
    ) -> None:
        vet = await self._place(sid, user_id, consult_id)
        await self._lobby.deny(consult_id, vet, person, reason)

    async def relay(
        self,
        sid: str,
        user_id: UUID,
        consult_id: UUID,
        to: Literal["sfu"] | UUID,
        description: RTCSessionDescription | None,
        candidate: IceCandidateInit | None,
        sessions: dict[str, str | None] | None = None,
        pc: Pc | None = None,
    ) -> None:
        """A signal to the peer `to`, or to the media server; `sessions` (the clients' names for
        their connections) go to the peer as they came; `pc` names a member's connection to
        the media server."""
        if description is None and candidate is None:
            raise Invalid("a signal carries a description or a candidate")
        if description is not None:
            check_sdp(description.sdp)
        caller = await self._admitted_place(sid, user_id, consult_id)
        if to == "sfu":
            session = (sessions or {}).get("session")
            await self._sfu.signal(consult_id, caller.user_id, description, candidate, pc, session)
            return
        if pc is not None:
            raise Invalid('`pc` names a connection to the media server (`to: "sfu"`)')
        if to == caller.user_id:
            raise Invalid("a signal to yourself")
        target = await self._calls.member(consult_id, to)
        if target is None or not target.admitted:
            raise NotFound("no such peer in this call")
        relayed: dict[str, object] = {"consult_id": str(consult_id), "from": str(user_id)}
        if description is not None:
            relayed["description"] = {"type": description.type, "sdp": description.sdp}
        if candidate is not None:
            relayed["candidate"] = {k: value for k, value in candidate.items() if value is not None}
        relayed.update({k: value for k, value in (sessions or {}).items() if value is not None})
        await self._bus.emit(target, "signal", relayed)

    async def leave(self, sid: str, user_id: UUID, consult_id: UUID) -> None:
        self._joined[sid].discard(consult_id)
        member = await self._calls.member(consult_id, user_id)
        if member is not None and member.sid == sid:
            removed = await self._calls.remove(consult_id, user_id)
            if removed is not None:
                await self._roster.depart(consult_id, removed)

    async def stats(
        self,
        sid: str,
        user_id: UUID,
        consult_id: UUID,
        *,
        rtt_ms: float,
        packet_loss: float,
        jitter_ms: float,
    ) -> int:
        """The caller's call quality level, which the others in the call are told."""
        caller = await self._admitted_place(sid, user_id, consult_id)
        level = quality_level(rtt_ms, packet_loss, jitter_ms)
        quality = {"consult_id": str(consult_id), "user_id": str(user_id), "level": level}
        others = await self._roster.others(consult_id, caller)
        await self._roster.tell(admitted(others), "quality", quality)
        return level

    async def media(
        self, sid: str, user_id: UUID, consult_id: UUID, *, audio: bool, video: bool
    ) -> None:
        """The caller's microphone and camera went on or off: kept for those who come in
        later, told to the others in the call now."""
        caller = await self._admitted_place(sid, user_id, consult_id)
        if not await self._calls.set_media(consult_id, caller, audio=audio, video=video):
            return  # a newer connection of theirs serves them now; it will say
        changed = caller.model_copy(update={"audio": audio, "video": video})
        others = await self._roster.others(consult_id, caller)
        await self._roster.tell(admitted(others), "media", changed.media(consult_id))

    async def consent(self, sid: str, actor: Actor, consult_id: UUID, *, granted: bool) -> None:
        """The caller (in the call or waiting) grants or withdraws consent to recording."""
        await self._place(sid, actor.user_id, consult_id)
        await self._recording.consent(consult_id, actor, granted=granted)

    async def record(
        self, sid: str, user_id: UUID, consult_id: UUID, action: Literal["start", "stop"]
    ) -> UUID:
        """The vet starts or stops recording; the recording's id."""
        vet = await self._place(sid, user_id, consult_id)
        return await self._recording.record(consult_id, vet, action)

    async def drop(self, sid: str, user_id: UUID) -> None:
        """The connection `sid` closed: its members' grace starts."""
        self._users.pop(sid, None)
        for consult_id in self._joined.pop(sid, set()):
            await self._calls.drop(consult_id, user_id, sid)

    async def revive(self) -> None:
        """This replica's lease had been reaped while it stalled: keep its live members."""
        for sid, consults in list(self._joined.items()):
            user = self._users.get(sid)
            if user is not None:
                for consult_id in list(consults):
                    await self._calls.revive(consult_id, user, sid)

    async def _consult(self, consult_id: UUID) -> Consult:
        consult = await get_consult(self._pool, consult_id)
        if consult is None:
            raise NotFound("no such consult")
        return consult

    async def _place(self, sid: str, user_id: UUID, consult_id: UUID) -> Member:
        """The caller's place in the call, which this connection must hold."""
        member = await self._calls.member(consult_id, user_id)
        if member is not None and member.sid == sid:
            return member
        role_in(await self._consult(consult_id), user_id)
        raise Forbidden("join the call first")

    async def _admitted_place(self, sid: str, user_id: UUID, consult_id: UUID) -> Member:
        member = await self._place(sid, user_id, consult_id)
        if not member.admitted:
            raise Forbidden("wait until the vet admits you")
        return member

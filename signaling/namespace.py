"""The `/rtc` namespace of CONTRACT.md: each event is parsed, handed to one method of the call
service (signaling.service, which says what each does) and its outcome mapped to the ack; a
refusal (a domain error) is answered by AuthenticatedNamespace with the code of its kind.
Everything it needs is built by the composition root (pawhub.hub).

Events: `join`, `admit`, `deny` (the lobby, signaling.lobby), `signal`, `leave`, `stats`,
`media` (a contract extension: microphone and camera on or off), `consent` and `record`
(signaling.recording; consent is ledgered with the connection's IP and user agent, kept here
from its handshake).
"""

from __future__ import annotations

from typing import Any

from domain.audit import Actor
from realtime.limits import Budget
from realtime.namespace import AuthenticatedNamespace
from realtime.protocol import Ack, event, ok
from signaling.payloads import (
    AdmitPayload,
    ConsentPayload,
    ConsultPayload,
    DenyPayload,
    JoinPayload,
    MediaPayload,
    RecordPayload,
    SignalPayload,
    StatsPayload,
)
from signaling.roster import lobby_entry
from signaling.service import CallService


class RtcNamespace(AuthenticatedNamespace):
    budgets = {
        **AuthenticatedNamespace.budgets,
        "join": Budget(30, 60),
        "leave": Budget(30, 60),
        "admit": Budget(60, 60),
        "deny": Budget(60, 60),
        "signal": Budget(300, 10),  # 50+ ICE candidates per offer
        "stats": Budget(20, 10),  # every second or two
        "media": Budget(30, 10),  # a click on Mute or Camera each
        "consent": Budget(20, 60),
        "record": Budget(20, 60),
    }

    def __init__(self, *, jwt_secret: str, service: CallService) -> None:
        super().__init__("/rtc", jwt_secret=jwt_secret)
        self._service = service
        self._clients: dict[str, tuple[str | None, str | None]] = {}  # sid -> (IP, user agent)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        await super().on_connect(sid, environ, auth)
        self._clients[sid] = (environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT"))

    @event("join", JoinPayload)
    async def join(self, sid: str, payload: JoinPayload) -> Ack:
        principal = await self.principal(sid)
        consult_id = payload.consult_id
        joined = await self._service.join(
            sid, principal.user_id, principal.name, consult_id, wants_sfu=payload.mode == "sfu"
        )
        ack = ok(
            consult_id=str(consult_id),
            mode=joined.mode.value,
            ice_servers=joined.ice_servers,
            you=joined.you.peer(),
            peers=[peer.peer() for peer in joined.peers],
            waiting=joined.waiting,
            polite=joined.polite,
            sfu_connections=joined.sfu_connections,
        )
        if joined.lobby is not None:
            ack["lobby"] = [lobby_entry(consult_id, person) for person in joined.lobby]
            for entry in ack["lobby"]:
                await self.emit("lobby", entry, to=sid)
        if joined.livekit is not None:
            ack["livekit"] = joined.livekit
        return ack

    @event("admit", AdmitPayload)
    async def admit(self, sid: str, payload: AdmitPayload) -> Ack:
        principal = await self.principal(sid)
        await self._service.admit(sid, principal.user_id, payload.consult_id, payload.user_id)
        return ok()

    @event("deny", DenyPayload)
    async def deny(self, sid: str, payload: DenyPayload) -> Ack:
        principal = await self.principal(sid)
        await self._service.deny(
            sid, principal.user_id, payload.consult_id, payload.user_id, payload.reason
        )
        return ok()

    @event("signal", SignalPayload)
    async def signal(self, sid: str, payload: SignalPayload) -> Ack:
        principal = await self.principal(sid)
        description, candidate = payload.description, payload.candidate
        await self._service.relay(
            sid,
            principal.user_id,
            payload.consult_id,
            payload.to,
            description.session() if description is not None else None,
            candidate.init() if candidate is not None else None,
            sessions={"session": payload.session, "to_session": payload.to_session},
            pc=payload.pc,
        )
        return ok()

    @event("leave", ConsultPayload)
    async def leave(self, sid: str, payload: ConsultPayload) -> Ack:
        principal = await self.principal(sid)
        await self._service.leave(sid, principal.user_id, payload.consult_id)
        return ok()

    @event("stats", StatsPayload)
    async def stats(self, sid: str, payload: StatsPayload) -> Ack:
        principal = await self.principal(sid)
        level = await self._service.stats(
            sid,
            principal.user_id,
            payload.consult_id,
            rtt_ms=payload.rtt_ms,
            packet_loss=payload.packet_loss,
            jitter_ms=payload.jitter_ms,
        )
        return ok(level=level)

    @event("media", MediaPayload)
    async def media(self, sid: str, payload: MediaPayload) -> Ack:
        principal = await self.principal(sid)
        await self._service.media(
            sid, principal.user_id, payload.consult_id, audio=payload.audio, video=payload.video
        )
        return ok()

    @event("consent", ConsentPayload)
    async def consent(self, sid: str, payload: ConsentPayload) -> Ack:
        principal = await self.principal(sid)
        ip, user_agent = self._clients[sid]
        actor = Actor(principal.user_id, ip, user_agent)
        await self._service.consent(sid, actor, payload.consult_id, granted=payload.granted)
        return ok()

    @event("record", RecordPayload)
    async def record(self, sid: str, payload: RecordPayload) -> Ack:
        principal = await self.principal(sid)
        recording_id = await self._service.record(
            sid, principal.user_id, payload.consult_id, payload.action
        )
        return ok(recording_id=str(recording_id))

    async def on_disconnect(self, sid: str, *_: Any) -> None:
        self._clients.pop(sid, None)
        principal = await self.principal(sid)
        await self._service.drop(sid, principal.user_id)

"""What hosts a consult's `sfu` media on the replica that claimed it (signaling.sfu_claims):
the embedded SFU (signaling.sfu_host) or Janus's VideoRoom (signaling.janus_host, with
`JANUS_URL`). signaling.sfu_router routes members' signals to it, wherever it is.

A member opens `connections` connections to it (CONTRACT.md): one that carries both ways
(signals without `pc`), or two, `pc: "publish"` offered by the member with its tracks and
`pc: "subscribe"` offered by the media server with everyone else's. With two, the media
server's signals name the publish connection they belong to (`to_session`, the `session` its
offer carried), so a page that replaced its connections can tell a late signal for the old.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol
from uuid import UUID

from aiortc import RTCSessionDescription

from domain.recordings.lifecycle import RecordingState
from media.sdp_rules import IceCandidateInit
from signaling.sfu_claims import SfuClaims

Pc = Literal["publish", "subscribe"]
Deliver = Callable[[UUID, UUID, str, dict[str, Any]], Awaitable[None]]  # consult, user, ...
Closed = Callable[[UUID], Awaitable[None]]  # a consult whose room is gone


class MediaHost(Protocol):
    claims: SfuClaims
    connections: Literal[1, 2]
    records: bool  # whether the consults it serves can be recorded

    async def signal(
        self,
        consult: UUID,
        user: UUID,
        description: RTCSessionDescription | None,
        candidate: IceCandidateInit | None,
        pc: Pc | None,
        session: str | None,
    ) -> None: ...

    async def remove(self, consult: UUID, user: UUID) -> None: ...

    async def record(self, consult: UUID, recording_id: UUID, state: RecordingState) -> None: ...

    def recorded_consults(self) -> list[UUID]: ...

    async def index_interrupted(self, recording_id: UUID) -> None: ...

    async def reclaim(self) -> None: ...

    async def abandoned(self, consult: UUID) -> None:
        """The replica that hosted the consult's room died: clear what it left behind."""

    async def close(self, closed: Closed) -> None: ...


def from_media_server(
    consult: UUID,
    description: RTCSessionDescription,
    pc: Pc | None = None,
    to_session: str | None = None,
) -> dict[str, Any]:
    """The `signal` a member gets from the media server."""
    signal: dict[str, Any] = {
        "consult_id": str(consult),
        "from": "sfu",
        "description": {"type": description.type, "sdp": description.sdp},
    }
    if pc is not None:
        signal["pc"] = pc
    if to_session is not None:
        signal["to_session"] = to_session
    return signal

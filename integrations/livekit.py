"""The LiveKit bridge: consults that outgrow the embedded SFU meet in a LiveKit room.

The hub creates the room through livekit-api's RoomService (Twirp over HTTP, each call signed
with a short JWT of the API key and secret), hands each participant an AccessToken scoped to
that room, records through its EgressService (a participant egress writes one person's audio
and video to S3 as MP4: LiveKit encodes it, the hub only asks), and verifies the webhooks
LiveKit sends back. No media passes through the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import TypedDict

import aiohttp
from livekit import api

ROOM_PREFIX = "consult-"
DEFAULT_TOKEN_TTL = timedelta(hours=1)
DEFAULT_EMPTY_TIMEOUT_S = 300


@dataclass(frozen=True)
class EgressStorage:
    """Where LiveKit's egress writes: the recordings' bucket, with credentials LiveKit uses."""

    bucket: str
    region: str
    endpoint: str | None
    access_key: str | None
    secret: str | None

    def s3(self) -> api.S3Upload:
        return api.S3Upload(
            bucket=self.bucket,
            region=self.region,
            endpoint=self.endpoint or "",
            access_key=self.access_key or "",
            secret=self.secret or "",
            force_path_style=self.endpoint is not None,  # MinIO and other S3 servers
        )


class LiveKitJoin(TypedDict):
    """The join ack's `livekit` field: where to connect and with what token."""

    url: str
    token: str


class LiveKitWebhookError(Exception):
    """A webhook whose signature, body hash or body does not check out."""


def room_name(consult_id: str) -> str:
    return f"{ROOM_PREFIX}{consult_id}"


class LiveKitBridge:
    """Rooms and tokens of one LiveKit deployment (LIVEKIT_URL, _API_KEY, _API_SECRET).

    Use as an async context manager, or call `aclose`; pass `session` to share an aiohttp
    session (then it is left open).
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        token_ttl: timedelta = DEFAULT_TOKEN_TTL,
        empty_timeout_s: int = DEFAULT_EMPTY_TIMEOUT_S,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._api_secret = api_secret
        self._token_ttl = token_ttl
        self._empty_timeout_s = empty_timeout_s
        self._api = api.LiveKitAPI(url, api_key, api_secret, session=session)

    async def ensure_room(self, consult_id: str, *, max_participants: int = 0) -> api.Room:
        """Create the consult's room, or return it if it exists (CreateRoom is idempotent)."""
        request = api.CreateRoomRequest(
            name=room_name(consult_id),
            empty_timeout=self._empty_timeout_s,
            max_participants=max_participants,
        )
        return await self._api.room.create_room(request)

    async def delete_room(self, consult_id: str) -> None:
        """End the consult's room, disconnecting everyone in it."""
        await self._api.room.delete_room(api.DeleteRoomRequest(room=room_name(consult_id)))

    def access_token(self, consult_id: str, user_id: str, *, name: str, admin: bool) -> str:
        """A token to join, publish and subscribe in the consult's room only; `admin` (vets)
        adds room administration (mute and remove participants)."""
        grants = api.VideoGrants(
            room=room_name(consult_id),
            room_join=True,
            can_publish=True,
            can_subscribe=True,
            can_publish_data=True,
            room_admin=admin,
        )
        token = api.AccessToken(self._api_key, self._api_secret)
        token.with_identity(user_id).with_name(name).with_ttl(self._token_ttl)
        jwt: str = token.with_grants(grants).to_jwt()
        return jwt

    async def join(
        self,
        consult_id: str,
        user_id: str,
        *,
        name: str,
        admin: bool,
        max_participants: int = 0,
    ) -> LiveKitJoin:
        """Ensure the room and return the join ack's `livekit` field for this participant."""
        await self.ensure_room(consult_id, max_participants=max_participants)
        token = self.access_token(consult_id, user_id, name=name, admin=admin)
        return {"url": self.url, "token": token}

    async def record_participant(
        self, consult_id: str, identity: str, object_key: str, storage: EgressStorage
    ) -> str:
        """Start writing one participant's audio and video to `object_key` in S3 (MP4, no
        screen share); the egress id."""
        request = api.ParticipantEgressRequest(
            room_name=room_name(consult_id),
            identity=identity,
            file_outputs=[
                api.EncodedFileOutput(
                    file_type=api.EncodedFileType.MP4, filepath=object_key, s3=storage.s3()
                )
            ],
        )
        info = await self._api.egress.start_participant_egress(request)
        egress_id: str = info.egress_id
        return egress_id

    async def stop_egress(self, egress_id: str) -> None:
        await self._api.egress.stop_egress(api.StopEgressRequest(egress_id=egress_id))

    async def aclose(self) -> None:
        await self._api.aclose()

    async def __aenter__(self) -> LiveKitBridge:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def verify_livekit_webhook(
    body: str, authorization: str, api_key: str, api_secret: str
) -> api.WebhookEvent:
    """Return the event if `authorization` (the header, with or without `Bearer `) is a JWT
    of this key and secret carrying the body's SHA-256; raise LiveKitWebhookError otherwise."""
    receiver = api.WebhookReceiver(api.TokenVerifier(api_key, api_secret))
    token = authorization.removeprefix("Bearer ").strip()
    if not token:
        raise LiveKitWebhookError("missing Authorization")
    try:
        event: api.WebhookEvent = receiver.receive(body, token)
    except Exception as error:  # livekit-api raises bare Exception for a hash mismatch
        raise LiveKitWebhookError(f"webhook refused: {error}") from error
    return event

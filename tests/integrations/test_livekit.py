"""The LiveKit bridge against a local Twirp endpoint (RoomService and EgressService) that checks
path, auth and body; tokens and webhooks checked with livekit-api's own verifier."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import jwt
import pytest
from aiohttp import web
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from livekit import api

from deploy.embedded import free_port
from integrations.livekit import (
    LiveKitBridge,
    LiveKitWebhookError,
    room_name,
    verify_livekit_webhook,
)

API_KEY = "APItestkey"
API_SECRET = "test-livekit-secret-0123456789abcdef"


@dataclass
class TwirpCall:
    method: str
    grants: api.VideoGrants
    request: Message


@dataclass
class FakeRoomService:
    """RoomService and EgressService endpoints speaking Twirp's protobuf encoding, as a LiveKit
    server does; `egresses` are the ids of the egresses running."""

    url: str
    calls: list[TwirpCall] = field(default_factory=list)
    egresses: set[str] = field(default_factory=set)

    def of(self, method: str) -> list[Message]:
        return [call.request for call in self.calls if call.method == method]


SERVICE = web.AppKey("service", FakeRoomService)


def twirp_error(status: int, code: str, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


Handler = Callable[["FakeRoomService", str, api.VideoGrants, bytes], web.Response]


def twirp(handle: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A route that checks content type and bearer token as a LiveKit server does, then hands
    the service, method, grants and body to `handle`."""

    async def route(request: web.Request) -> web.Response:
        if request.content_type != "application/protobuf":
            return twirp_error(400, "malformed", f"unexpected content type {request.content_type}")
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            return twirp_error(401, "unauthenticated", "no bearer token")
        try:
            claims = api.TokenVerifier(API_KEY, API_SECRET).verify(authorization[len("Bearer ") :])
        except jwt.PyJWTError as error:
            return twirp_error(401, "unauthenticated", str(error))
        assert claims.video is not None
        body = await request.read()
        return handle(request.app[SERVICE], request.match_info["method"], claims.video, body)

    return route


def protobuf(message: Message) -> web.Response:
    return web.Response(body=message.SerializeToString(), content_type="application/protobuf")


def egress_service(
    service: FakeRoomService, method: str, grants: api.VideoGrants, body: bytes
) -> web.Response:
    if not grants.room_record:
        return twirp_error(403, "permission_denied", f"{method} needs roomRecord")
    if method == "StartParticipantEgress":
        start = api.ParticipantEgressRequest.FromString(body)
        service.calls.append(TwirpCall(method, grants, start))
        egress_id = f"EG_{len(service.calls)}"
        service.egresses.add(egress_id)
        status = api.EgressStatus.EGRESS_STARTING
        return protobuf(
            api.EgressInfo(egress_id=egress_id, room_name=start.room_name, status=status)
        )
    if method == "StopEgress":
        stop = api.StopEgressRequest.FromString(body)
        service.calls.append(TwirpCall(method, grants, stop))
        if stop.egress_id not in service.egresses:
            return twirp_error(412, "failed_precondition", "egress is not running")
        service.egresses.discard(stop.egress_id)
        status = api.EgressStatus.EGRESS_ENDING
        return protobuf(api.EgressInfo(egress_id=stop.egress_id, status=status))
    return twirp_error(404, "bad_route", f"no such method {method}")


def room_service(
    service: FakeRoomService, method: str, grants: api.VideoGrants, body: bytes
) -> web.Response:
    if method == "CreateRoom" and grants.room_create:
        create = api.CreateRoomRequest.FromString(body)
        service.calls.append(TwirpCall(method, grants, create))
        room = api.Room(
            sid="RM_test",
            name=create.name,
            empty_timeout=create.empty_timeout,
            max_participants=create.max_participants,
        )
        return web.Response(body=room.SerializeToString(), content_type="application/protobuf")
    if method == "DeleteRoom" and grants.room_create:
        service.calls.append(TwirpCall(method, grants, api.DeleteRoomRequest.FromString(body)))
        response = api.DeleteRoomResponse().SerializeToString()
        return web.Response(body=response, content_type="application/protobuf")
    return twirp_error(403, "permission_denied", f"{method} not allowed by these grants")


@pytest.fixture
async def livekit_server() -> AsyncIterator[FakeRoomService]:
    port = free_port()
    service = FakeRoomService(f"ws://127.0.0.1:{port}")
    app = web.Application()
    app[SERVICE] = service
    app.router.add_post("/twirp/livekit.RoomService/{method}", twirp(room_service))
    app.router.add_post("/twirp/livekit.Egress/{method}", twirp(egress_service))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield service
    await runner.cleanup()


async def test_ensure_room_creates_the_consults_room(livekit_server: FakeRoomService) -> None:
    async with LiveKitBridge(livekit_server.url, API_KEY, API_SECRET) as bridge:
        room = await bridge.ensure_room("c-42", max_participants=8)

    assert (room.sid, room.name, room.max_participants) == ("RM_test", "consult-c-42", 8)
    [call] = livekit_server.calls
    assert call.method == "CreateRoom"
    assert call.grants.room_create is True
    assert isinstance(call.request, api.CreateRoomRequest)
    assert call.request.name == room_name("c-42") == "consult-c-42"
    assert call.request.empty_timeout == 300
    assert call.request.max_participants == 8


async def test_delete_room_ends_the_consults_room(livekit_server: FakeRoomService) -> None:
    async with LiveKitBridge(livekit_server.url, API_KEY, API_SECRET) as bridge:
        await bridge.delete_room("c-42")

    [call] = livekit_server.calls
    assert call.method == "DeleteRoom"
    assert isinstance(call.request, api.DeleteRoomRequest)
    assert call.request.room == "consult-c-42"


async def test_a_wrong_secret_is_refused_by_the_server(livekit_server: FakeRoomService) -> None:
    async with LiveKitBridge(
        livekit_server.url, API_KEY, "not-the-secret-0123456789abcdefghij"
    ) as bridge:
        with pytest.raises(api.ServerError) as refused:
            await bridge.ensure_room("c-42")
    assert refused.value.status == 401
    assert livekit_server.calls == []


@pytest.mark.parametrize("admin", [False, True], ids=["owner", "vet"])
async def test_join_gives_a_token_scoped_to_the_room(
    livekit_server: FakeRoomService, admin: bool
) -> None:
    async with LiveKitBridge(livekit_server.url, API_KEY, API_SECRET) as bridge:
        joined = await bridge.join("c-42", "user-7", name="Dr. Vera", admin=admin)

    assert joined["url"] == livekit_server.url
    assert [call.method for call in livekit_server.calls] == ["CreateRoom"]
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(joined["token"])
    assert (claims.identity, claims.name) == ("user-7", "Dr. Vera")
    assert claims.video is not None
    assert claims.video.room == "consult-c-42"
    assert claims.video.room_join and claims.video.can_publish and claims.video.can_subscribe
    assert bool(claims.video.room_admin) is admin
    assert not claims.video.room_create and not claims.video.room_list
    with pytest.raises(jwt.InvalidSignatureError):
        api.TokenVerifier(API_KEY, "another-secret-0123456789abcdefghij").verify(joined["token"])


def signed_webhook(event: api.WebhookEvent, secret: str = API_SECRET) -> tuple[str, str]:
    """A webhook body and Authorization header as a LiveKit server sends them."""
    body = MessageToJson(event)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return body, api.AccessToken(API_KEY, secret).with_sha256(digest).to_jwt()


def room_finished() -> api.WebhookEvent:
    return api.WebhookEvent(event="room_finished", id="EV_1", room=api.Room(name="consult-c-42"))


def test_a_signed_webhook_is_accepted() -> None:
    body, authorization = signed_webhook(room_finished())

    event = verify_livekit_webhook(body, authorization, API_KEY, API_SECRET)

    assert (event.event, event.id, event.room.name) == ("room_finished", "EV_1", "consult-c-42")
    bearer = verify_livekit_webhook(body, f"Bearer {authorization}", API_KEY, API_SECRET)
    assert bearer == event


def test_forged_or_tampered_webhooks_are_refused() -> None:
    body, authorization = signed_webhook(room_finished())
    _, forged = signed_webhook(room_finished(), secret="forged-secret-0123456789abcdefghijk")
    tampered = body.replace("consult-c-42", "consult-c-43")

    for candidate_body, candidate_authorization in [
        (body, forged),
        (tampered, authorization),
        (body, ""),
    ]:
        with pytest.raises(LiveKitWebhookError):
            verify_livekit_webhook(candidate_body, candidate_authorization, API_KEY, API_SECRET)

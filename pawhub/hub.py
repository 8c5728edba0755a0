"""Composition root of the realtime hub: builds the aiohttp app and registers the namespaces."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from domain.chat.room_channel import channels_prefix
from domain.redis_client import RedisClient
from integrations.livekit import EgressStorage, LiveKitBridge
from media.janus import JanusAccess
from moderation.namespace import ModerationNamespace
from moderation.screening import PreSendScreen
from pawhub.resources import check_dependencies, open_pool, open_redis, open_s3
from pawhub.settings import Settings
from pawhub.web import add_pages
from pawhub.worker import thresholds_of
from realtime.chat import ChatNamespace
from realtime.drain import draining_response
from realtime.fanout import RoomFanout
from realtime.group_commit import GroupCommitStore
from realtime.handoff import ModerationHandoff
from realtime.limits import SocketLimits
from realtime.membership import MembershipWatch
from realtime.presence import Presence
from realtime.presence_news import PresenceNews
from realtime.rate_limit import SendRateLimiter
from realtime.server import SOCKET_SERVER, create_socket_server, mount
from recordings.studio import Studio
from signaling.bus import ReplicaBus
from signaling.calls import Calls
from signaling.egress import LiveKitRecorder
from signaling.janus_host import JanusHost
from signaling.leases import ReplicaLeases
from signaling.lobby import Lobby
from signaling.media_host import MediaHost
from signaling.namespace import RtcNamespace
from signaling.recording import RecordingControl
from signaling.replica import RtcReplica
from signaling.roster import Roster
from signaling.service import CallService
from signaling.sfu_host import SfuHost
from signaling.sfu_router import SfuRouter
from signaling.turn import TurnServers

POOL = web.AppKey("pool", asyncpg.Pool)
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")


async def healthz(request: web.Request) -> web.Response:
    if request.app[SOCKET_SERVER].drain.reported:  # SIGTERM: the balancer stops sending here
        return draining_response()
    checks = await check_dependencies(request.app[POOL], request.app[REDIS])
    healthy = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _livekit_bridge(settings: Settings) -> LiveKitBridge | None:
    """The LiveKit bridge when LIVEKIT_URL, _API_KEY and _API_SECRET are all set."""
    if settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret:
        return LiveKitBridge(
            settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret
        )
    return None


def _rtc(
    settings: Settings,
    emit: Callable[..., Awaitable[None]],
    pool: asyncpg.Pool,
    redis: RedisClient,
    replica_id: str,
    livekit: LiveKitBridge | None,
    studio: Studio | None,
) -> tuple[RtcNamespace, RtcReplica]:
    """The `/rtc` namespace and this replica's background part of it, sharing one call state."""
    prefix = settings.redis_namespace

    async def emit_here(sid: str, name: str, data: dict[str, Any]) -> None:
        await emit(name, data, to=sid, namespace="/rtc")

    calls = Calls(redis, prefix, settings.rtc_reconnect_grace_s)
    bus = ReplicaBus(redis, prefix, replica_id, emit_here, lambda command: router.run(command))
    sfu: MediaHost
    if settings.janus_url:
        sfu = JanusHost(
            redis,
            prefix,
            replica_id,
            lambda *event: router.deliver(*event),
            lambda consult: router.lost(consult),
            JanusAccess(settings.janus_url, settings.janus_api_secret, settings.janus_admin_key),
            settings.jwt_secret,
            studio,
        )
    else:
        sfu = SfuHost(
            redis,
            prefix,
            replica_id,
            lambda *event: router.deliver(*event),
            lambda *event: router.tell_vet(*event),
            studio,
        )
    router = SfuRouter(calls, sfu, bus)
    egress = None
    if livekit is not None and settings.has_s3:
        storage = EgressStorage(
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            endpoint=settings.s3_endpoint_url,
            access_key=settings.s3_access_key_id,
            secret=settings.s3_secret_access_key,
        )
        egress = LiveKitRecorder(pool, calls, livekit, storage)
    recording = RecordingControl(pool, calls, bus, router, egress)
    roster = Roster(calls, bus, router, recording)
    service = CallService(
        pool=pool,
        calls=calls,
        bus=bus,
        roster=roster,
        lobby=Lobby(calls, bus, roster, livekit),
        sfu=router,
        recording=recording,
        turn=TurnServers(tuple(settings.turn_urls), settings.turn_secret),
        livekit_configured=livekit is not None,
    )
    leases = ReplicaLeases(redis, prefix, replica_id, settings.rtc_replica_lease_s)
    replica = RtcReplica(
        calls=calls,
        leases=leases,
        bus=bus,
        sfu=sfu,
        router=router,
        roster=roster,
        service=service,
        recording=recording,
    )
    return RtcNamespace(jwt_secret=settings.jwt_secret, service=service), replica


async def _studio(settings: Settings, pool: asyncpg.Pool, exits: AsyncExitStack) -> Studio:
    """Recording media's way to S3, open until `exits` closes."""
    s3 = await exits.enter_async_context(open_s3(settings))
    studio = Studio(
        pool,
        s3,
        settings.s3_bucket,
        settings.recording_buffer_dir,
        settings.recording_buffer_max_bytes,
    )
    studio.start()
    exits.push_async_callback(studio.stop)
    return studio


def build_hub_app(settings: Settings, *, limits: SocketLimits | None = None) -> web.Application:
    """The hub's app; `limits` replaces the default event budgets and session grace."""
    if not (settings.database_url and settings.redis_url):
        raise ValueError("the hub needs DATABASE_URL and REDIS_URL")
    database_url, redis_url = settings.database_url, settings.redis_url
    prefix = settings.redis_namespace
    replica_id = uuid4().hex
    app = web.Application()
    sio = create_socket_server(
        jwt_secret=settings.jwt_secret, write_delay_s=settings.fanout_write_delay_ms / 1000
    )
    mount(sio, app)

    async def services(app: web.Application) -> AsyncIterator[None]:
        exits = AsyncExitStack()
        pool = app[POOL] = await open_pool(database_url, max_size=settings.database_pool_size)
        redis = app[REDIS] = open_redis(redis_url, cluster=settings.redis_cluster)
        fanout = RoomFanout(sio, pool, redis, channels_prefix(prefix), replica_id)
        handoff = ModerationHandoff(redis, prefix)
        store = GroupCommitStore(pool)

        presence_news = PresenceNews(fanout, lambda pairs: presence.online_now(pairs))

        async def went_offline(room: UUID, user: UUID) -> None:
            presence_news.tell(room, user, online=False)

        presence = Presence(redis, prefix, replica_id, went_offline)
        chat = ChatNamespace(
            jwt_secret=settings.jwt_secret,
            pool=pool,
            fanout=fanout,
            presence=presence,
            presence_news=presence_news,
            limiter=SendRateLimiter(redis, prefix, settings.chat_rate_limit),
            handoff=handoff,
            screen=PreSendScreen(thresholds_of(settings)),
            store=store,
        )
        moderation = ModerationNamespace(
            jwt_secret=settings.jwt_secret, pool=pool, redis=redis, prefix=prefix, fanout=fanout
        )
        livekit = _livekit_bridge(settings)
        studio = await _studio(settings, pool, exits) if settings.has_s3 else None
        rtc, rtc_replica = _rtc(settings, sio.emit, pool, redis, replica_id, livekit, studio)
        sio.register_namespace(chat)
        sio.register_namespace(moderation)
        sio.register_namespace(rtc)
        if limits is not None:
            for namespace in sio.namespace_handlers.values():
                namespace.limit(limits)
        membership = MembershipWatch(pool, fanout)
        background = (fanout, membership, presence, presence_news, handoff, moderation, rtc_replica)
        for service in background:
            await service.start()
        yield
        for service in reversed(background):
            await service.stop()
        await exits.aclose()  # the studio and its S3 client, after the rooms it records
        if livekit is not None:
            await livekit.aclose()
        await redis.aclose()
        await pool.close()

    app.cleanup_ctx.append(services)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_pages(app, settings.public_api_url)
    return app

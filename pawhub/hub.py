"""Composition root of the realtime hub: builds the aiohttp app and registers the namespaces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from media.livekit import LiveKitBridge
from moderation.namespace import ModerationNamespace
from moderation.screening import PreSendScreen
from pawhub.resources import check_dependencies, open_pool, open_redis
from pawhub.settings import Settings
from pawhub.worker import thresholds_of
from realtime.chat import ChatNamespace
from realtime.fanout import RoomFanout
from realtime.group_commit import GroupCommitStore
from realtime.handoff import ModerationHandoff
from realtime.presence import Presence
from realtime.rate_limit import SendRateLimiter
from realtime.server import create_socket_server, mount
from signaling.namespace import RtcNamespace

POOL = web.AppKey("pool", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)


async def healthz(request: web.Request) -> web.Response:
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


def build_hub_app(settings: Settings) -> web.Application:
    if not (settings.database_url and settings.redis_url):
        raise ValueError("the hub needs DATABASE_URL and REDIS_URL")
    database_url, redis_url = settings.database_url, settings.redis_url
    prefix = settings.redis_namespace
    replica_id = uuid4().hex
    app = web.Application()
    sio = create_socket_server(jwt_secret=settings.jwt_secret)
    mount(sio, app)

    async def services(app: web.Application) -> AsyncIterator[None]:
        pool = app[POOL] = await open_pool(database_url)
        redis = app[REDIS] = open_redis(redis_url)
        fanout = RoomFanout(sio, pool, redis, f"{prefix}:chat:fanout", replica_id)
        handoff = ModerationHandoff(redis, prefix)
        store = GroupCommitStore(pool)

        async def went_offline(room: UUID, user: UUID) -> None:
            await chat.announce_offline(room, user)

        presence = Presence(redis, prefix, replica_id, went_offline)
        chat = ChatNamespace(
            jwt_secret=settings.jwt_secret,
            pool=pool,
            fanout=fanout,
            presence=presence,
            limiter=SendRateLimiter(redis, prefix, settings.chat_rate_limit),
            handoff=handoff,
            screen=PreSendScreen(thresholds_of(settings)),
            store=store,
        )
        moderation = ModerationNamespace(
            jwt_secret=settings.jwt_secret, pool=pool, redis=redis, prefix=prefix, fanout=fanout
        )
        livekit = _livekit_bridge(settings)
        rtc = RtcNamespace(
            jwt_secret=settings.jwt_secret,
            pool=pool,
            redis=redis,
            prefix=prefix,
            replica_id=replica_id,
            turn_urls=settings.turn_urls,
            turn_secret=settings.turn_secret,
            livekit=livekit,
        )
        sio.register_namespace(chat)
        sio.register_namespace(moderation)
        sio.register_namespace(rtc)
        background = (fanout, presence, handoff, moderation, rtc)
        for service in background:
            await service.start()
        yield
        for service in reversed(background):
            await service.stop()
        if livekit is not None:
            await livekit.aclose()
        await redis.aclose()
        await pool.close()

    app.cleanup_ctx.append(services)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app

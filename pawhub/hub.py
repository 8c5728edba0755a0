"""Composition root of the realtime hub: builds the aiohttp app and registers the namespaces."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pawhub.resources import check_dependencies, open_pool, open_redis
from pawhub.settings import Settings
from realtime.namespace import AuthenticatedNamespace
from realtime.server import create_socket_server, mount

POOL = web.AppKey("pool", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)


async def healthz(request: web.Request) -> web.Response:
    checks = await check_dependencies(request.app[POOL], request.app[REDIS])
    healthy = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_hub_app(settings: Settings) -> web.Application:
    if not (settings.database_url and settings.redis_url):
        raise ValueError("the hub needs DATABASE_URL and REDIS_URL")
    database_url, redis_url = settings.database_url, settings.redis_url
    app = web.Application()

    async def connections(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = await open_pool(database_url)
        app[REDIS] = open_redis(redis_url)
        yield
        await app[REDIS].aclose()
        await app[POOL].close()

    app.cleanup_ctx.append(connections)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)

    sio = create_socket_server(jwt_secret=settings.jwt_secret)
    sio.register_namespace(AuthenticatedNamespace("/chat", jwt_secret=settings.jwt_secret))
    mount(sio, app)
    return app

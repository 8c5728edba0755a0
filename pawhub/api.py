"""The API's composition root: `pawhub api` serves what `create_app` builds. It opens the
connections the REST layer finds in `app.state` (the PostgreSQL pool and the EHR reads' group
commit over it, Redis, the S3 store) and answers `/healthz` by probing them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from litestar import Litestar, Response, get
from litestar.datastructures import State

from domain.batching import GroupCommit
from domain.clinical import ehr
from pawhub.resources import check_dependencies, open_pool, open_redis, open_s3
from pawhub.settings import Settings
from rest.app import build_app
from rest.clinical.attachments import object_storage


@get("/healthz", tags=["ops"], summary="Liveness and dependency health")
async def healthz(state: State) -> Response[dict[str, Any]]:
    checks = await check_dependencies(state.pool, state.redis)
    healthy = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return Response(body, status_code=200 if healthy else 503)


def create_app(settings: Settings) -> Litestar:
    if not (settings.database_url and settings.redis_url):
        raise ValueError("the API needs DATABASE_URL and REDIS_URL")
    database_url, redis_url = settings.database_url, settings.redis_url

    @asynccontextmanager
    async def connections(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await open_pool(database_url, max_size=settings.database_pool_size)
        app.state.record_reads = GroupCommit(partial(ehr.list_records, app.state.pool))
        app.state.redis = open_redis(redis_url, cluster=settings.redis_cluster)
        try:
            yield
        finally:
            await app.state.redis.aclose()
            await app.state.pool.close()

    storage = object_storage(lambda: open_s3(settings), settings.s3_bucket, settings.s3_region)
    return build_app(settings, connections=[connections, storage], healthz=healthz)

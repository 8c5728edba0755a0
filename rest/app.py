"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components

from domain import ehr
from pawhub.batching import GroupCommit
from pawhub.resources import check_dependencies, open_pool, open_redis
from pawhub.settings import Settings
from rest import auth
from rest.admin_catalog import CatalogAdminController
from rest.attachments import AttachmentController, object_storage
from rest.background import periodic_jobs
from rest.conversations import ConversationController
from rest.identity import AuthController, create_staff, me
from rest.livekit_webhooks import livekit_webhook
from rest.marketplace import CartController, OrderController, ProductController
from rest.moderation import ModerationController
from rest.payouts import PayoutAccountController
from rest.pets import PetController, RecordController
from rest.problems import exception_handlers
from rest.scheduling import BookingController, ConsultController, VetController
from rest.stripe_webhooks import stripe_webhook
from rest.wellness import WellnessPlanController


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
        app.state.pool = await open_pool(database_url)
        app.state.record_reads = GroupCommit(partial(ehr.list_records, app.state.pool))
        app.state.redis = open_redis(redis_url)
        try:
            yield
        finally:
            await app.state.redis.aclose()
            await app.state.pool.close()

    return Litestar(
        route_handlers=[
            healthz,
            AuthController,
            me,
            create_staff,
            PetController,
            AttachmentController,
            RecordController,
            VetController,
            BookingController,
            ConsultController,
            ConversationController,
            ModerationController,
            livekit_webhook,
            ProductController,
            CartController,
            OrderController,
            CatalogAdminController,
            PayoutAccountController,
            WellnessPlanController,
            stripe_webhook,
        ],
        dependencies=auth.dependencies,
        middleware=[auth.bearer_auth],
        lifespan=[
            connections,
            object_storage(settings),
            periodic_jobs(f"{settings.redis_namespace}:events"),
        ],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="pawhub API",
            version="1",
            path="/schema",
            components=Components(security_schemes=auth.SECURITY_SCHEMES),
        ),
        state=State({"settings": settings}),
        debug=False,
        logging_config=None,  # pawhub.logs configures logging for every service
    )

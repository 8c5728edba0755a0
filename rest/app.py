"""The Litestar application: its routes, bearer auth, CORS, OpenAPI and problem+json errors.

The process layer composes it (`pawhub.api.create_app`): it opens the connections the routes
find in `app.state` (`pool`, `record_reads`, `redis`, `s3`) and puts the settings there
(`rest.config.ApiSettings`), so nothing here imports the layer above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components

from rest import auth
from rest.background import periodic_jobs
from rest.chat.conversations import ConversationController
from rest.chat.moderation import ModerationController
from rest.clinical.attachments import AttachmentController
from rest.clinical.pets import PetController, RecordController
from rest.commerce.admin_catalog import CatalogAdminController
from rest.commerce.marketplace import CartController, OrderController, ProductController
from rest.commerce.payouts import PayoutAccountController
from rest.commerce.stripe_webhooks import stripe_webhook
from rest.commerce.wellness import WellnessPlanController
from rest.config import ApiSettings
from rest.identity.controllers import AuthController, create_staff, me
from rest.problems import exception_handlers
from rest.recordings.controllers import RecordingController
from rest.scheduling.controllers import BookingController, ConsultController, VetController
from rest.scheduling.livekit_webhooks import livekit_webhook
from rest.scheduling.upcoming import upcoming_consults

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def build_app(
    settings: ApiSettings, *, connections: Sequence[Lifespan], healthz: HTTPRouteHandler
) -> Litestar:
    """The API over what `connections` open (in order, before the periodic jobs start) and
    `healthz`, the probe of those connections."""
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
            RecordingController,
            upcoming_consults,
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
        lifespan=[*connections, periodic_jobs(f"{settings.redis_namespace}:events")],
        # The pages under the hub's /app/ call the API from the hub's origin.
        cors_config=CORSConfig(
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        ),
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

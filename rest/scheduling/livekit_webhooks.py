"""`POST /v1/webhooks/livekit`: LiveKit's room, participant and egress events.

LiveKit signs each delivery with its own JWT (API key and secret, carrying the body's SHA-256)
in `Authorization`, so the route opts out of the hub's bearer auth and checks that signature
instead. `egress_ended` completes the recording egress it names (signaling.egress started it):
its file's size and duration, or the error LiveKit gives; a repeated delivery changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from litestar import Request, post
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, NotFoundException
from livekit import api

from domain.recordings import egresses
from integrations.livekit import LiveKitWebhookError, verify_livekit_webhook
from rest.config import settings_of
from rest.problems import problem_responses

log = logging.getLogger(__name__)


@post(
    "/v1/webhooks/livekit",
    tags=["webhooks"],
    summary="LiveKit webhook, verified with LIVEKIT_API_KEY and LIVEKIT_API_SECRET",
    status_code=200,
    opt={"exclude_from_auth": True},
    security=[],
    responses=problem_responses(400, 401, 404),
)
async def livekit_webhook(
    request: Request[Any, Any, Any], state: State, db: asyncpg.Connection
) -> dict[str, str]:
    settings = settings_of(state)
    if not (settings.livekit_api_key and settings.livekit_api_secret):
        raise NotFoundException("LiveKit is not configured")
    body = (await request.body()).decode(errors="replace")
    try:
        event = verify_livekit_webhook(
            body,
            request.headers.get("authorization", ""),
            settings.livekit_api_key,
            settings.livekit_api_secret,
        )
    except LiveKitWebhookError as error:
        raise NotAuthorizedException("the webhook signature does not check out") from error
    log.info("livekit webhook %s %s room=%s", event.id, event.event, event.room.name)
    if event.event == "egress_ended":
        await _egress_ended(db, event.egress_info)
    return {"id": event.id, "event": event.event}


async def _egress_ended(conn: asyncpg.Connection, info: api.EgressInfo) -> None:
    complete = info.status == api.EgressStatus.EGRESS_COMPLETE
    file = info.file_results[0] if info.file_results else None
    ours = await egresses.ended(
        conn,
        info.egress_id,
        complete=complete and file is not None,
        size_bytes=file.size if file else None,
        duration_s=file.duration / 1e9 if file else None,  # nanoseconds
        error=None if complete else info.error or api.EgressStatus.Name(info.status),
    )
    if not ours:
        log.warning("livekit egress %s is not one of pawhub's recordings", info.egress_id)

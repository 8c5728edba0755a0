"""Moderation over REST: flags with filters and paging, and the numbers behind them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get
from litestar.params import QueryParameter
from pydantic import BaseModel

from domain.moderation import Flag, FlagStatus, flag_stats, list_flags, may_moderate
from rest.auth import SECURED, Db
from rest.guards import role_allows
from rest.problems import problem_responses


class FlagPage(BaseModel):
    flags: list[Flag]
    has_more: bool
    next_before: datetime | None


class ModerationController(Controller):
    path = "/v1/moderation"
    tags = ["moderation"]
    security = SECURED
    guards = [role_allows(may_moderate, "moderate")]

    @get(
        "/flags",
        summary="Flags, newest first; page with `before` = the previous page's `next_before`",
        responses=problem_responses(400, 401, 403),
    )
    async def flags(
        self,
        db: Db,
        status: Annotated[list[FlagStatus] | None, QueryParameter()] = None,
        room: Annotated[UUID | None, QueryParameter()] = None,
        before: Annotated[datetime | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> FlagPage:
        flags, has_more = await list_flags(
            db, statuses=status, room=room, before=before, limit=limit
        )
        return FlagPage(
            flags=flags, has_more=has_more, next_before=flags[-1].ts if has_more else None
        )

    @get(
        "/stats",
        summary="Flags by status and model, actions by kind",
        responses=problem_responses(401, 403),
    )
    async def stats(self, db: Db) -> dict[str, Any]:
        return await flag_stats(db)

"""Moderation over REST: flags with filters, sorting and paging, a flag's audit trail, a sender's
moderation history, and the numbers behind them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get
from litestar.params import PathParameter, QueryParameter
from pydantic import BaseModel

from domain import audit
from domain.chat.actions import may_moderate
from domain.chat.flag_trail import FlagTrail, flag_trail
from domain.chat.flags import Flag, FlagOrder, FlagStatus, flag_stats, list_flags
from domain.chat.sender_history import MAX_HISTORY_PAGE, SenderHistory, sender_history
from domain.fields import NO_NUL
from rest.auth import SECURED, CurrentActor, Db
from rest.guards import role_allows
from rest.problems import problem_responses


class FlagPage(BaseModel):
    flags: list[Flag]
    has_more: bool
    next_before: datetime | None  # the next page of `sort=newest`
    next_offset: int | None  # the next page of either order


class ModerationController(Controller):
    path = "/v1/moderation"
    tags = ["moderation"]
    security = SECURED
    guards = [role_allows(may_moderate, "moderate")]

    @get(
        "/flags",
        summary="Flags, newest or most severe first, filtered by status, room, label and time",
        description=(
            "`since` and `before` bound the creation time ([since, before)); `label` keeps flags"
            " scored for that label. Page with `before` = the previous page's `next_before`"
            " (newest first only), or `offset` = its `next_offset`."
        ),
        responses=problem_responses(400, 401, 403),
    )
    async def flags(
        self,
        db: Db,
        status: Annotated[list[FlagStatus] | None, QueryParameter()] = None,
        room: Annotated[UUID | None, QueryParameter()] = None,
        label: Annotated[
            str | None, QueryParameter(min_length=1, max_length=64, pattern=NO_NUL)
        ] = None,
        since: Annotated[datetime | None, QueryParameter()] = None,
        before: Annotated[datetime | None, QueryParameter()] = None,
        sort: Annotated[FlagOrder, QueryParameter()] = FlagOrder.newest,
        offset: Annotated[int, QueryParameter(ge=0, le=10_000)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> FlagPage:
        flags, has_more = await list_flags(
            db,
            statuses=status,
            room=room,
            label=label,
            since=since,
            before=before,
            order=sort,
            offset=offset,
            limit=limit,
        )
        newest_first = sort is FlagOrder.newest
        return FlagPage(
            flags=flags,
            has_more=has_more,
            next_before=flags[-1].ts if has_more and newest_first else None,
            next_offset=offset + len(flags) if has_more else None,
        )

    @get(
        "/flags/{flag_id:uuid}/trail",
        summary="A flag's audit trail, oldest first: how it was raised, then every action",
        description=(
            "Who raised the flag (a reporter, or the model), then each entry the audit log holds"
            " for it (actions with their reason and duration, take-overs of another moderator's"
            " claim). Each read is audited."
        ),
        responses=problem_responses(401, 403, 404),
    )
    async def trail(
        self, db: Db, actor: CurrentActor, flag_id: Annotated[UUID, PathParameter()]
    ) -> FlagTrail:
        found = await flag_trail(db, flag_id)
        await audit.append(db, actor, "moderation.trail_read", "flag_trail", flag_id)
        return found

    @get(
        "/users/{user_id:uuid}/history",
        summary="A sender's earlier flags and the actions taken on each, newest first",
        description=(
            "Flags raised on the user's messages before `before` (all if omitted), at most"
            f" `limit` (up to {MAX_HISTORY_PAGE}), each with its newest actions; page with"
            " `before` = the previous page's `next_before`. Each read is audited."
        ),
        responses=problem_responses(400, 401, 403, 404),
    )
    async def history(
        self,
        db: Db,
        actor: CurrentActor,
        user_id: Annotated[UUID, PathParameter()],
        before: Annotated[datetime | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_HISTORY_PAGE)] = 20,
    ) -> SenderHistory:
        found = await sender_history(db, user_id, before=before, limit=limit)
        await audit.append(db, actor, "moderation.history_read", "user", user_id)
        return found

    @get(
        "/stats",
        summary="Flags by status and model, actions by kind",
        responses=problem_responses(401, 403),
    )
    async def stats(self, db: Db) -> dict[str, Any]:
        return await flag_stats(db)

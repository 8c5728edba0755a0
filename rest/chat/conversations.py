"""Conversations: chat rooms, created here and lived in on the hub's /chat namespace."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.chat.conversations import (
    Conversation,
    ConversationSummary,
    create_conversation,
    creation_budget,
    leave_conversation,
    list_conversations,
)
from domain.errors import NotFound
from domain.fields import NO_NUL
from rest.auth import SECURED, CurrentPrincipal, Db, Limits
from rest.problems import problem_responses


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_ids: list[UUID] = Field(max_length=100)
    title: Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)] | None = None


class ConversationController(Controller):
    path = "/v1/conversations"
    tags = ["conversations"]
    security = SECURED

    @post(
        summary="Create a chat room; the caller is always a member (rate-limited per user)",
        responses=problem_responses(400, 401, 422, 429),
    )
    async def create(
        self,
        db: Db,
        state: State,
        principal: CurrentPrincipal,
        limits: Limits,
        data: JSONBody[NewConversation],
    ) -> Conversation:
        await limits.spend(
            creation_budget(principal.user_id, state.settings.conversation_limit_per_hour)
        )
        return await create_conversation(db, principal.user_id, data.member_ids, data.title)

    @get(
        summary="The caller's rooms with their last seq and unread count",
        responses=problem_responses(401),
    )
    async def list_mine(self, db: Db, principal: CurrentPrincipal) -> list[ConversationSummary]:
        return await list_conversations(db, principal.user_id)

    @get("/{conversation_id:uuid}", responses=problem_responses(400, 401, 404))
    async def read(
        self, db: Db, principal: CurrentPrincipal, conversation_id: FromPath[UUID]
    ) -> ConversationSummary:
        for conversation in await list_conversations(db, principal.user_id):
            if conversation.id == conversation_id:
                return conversation
        raise NotFound("no such conversation")

    @post(
        "/{conversation_id:uuid}/leave",
        status_code=204,
        summary="Leave a chat room (it stays, with its messages, for the other members)",
        responses=problem_responses(400, 401, 404),
    )
    async def leave(
        self, db: Db, principal: CurrentPrincipal, conversation_id: FromPath[UUID]
    ) -> None:
        await leave_conversation(db, conversation_id, principal.user_id)

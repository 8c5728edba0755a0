from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from domain.identity import Role, User
from pawhub.settings import Settings
from tests.moderation_live.claims_helpers import Moderator, OpenModerator
from tests.recording_client import ModeratorClient
from tests.scoring_worker import running_scoring_worker


@pytest.fixture(scope="session")
async def scoring_worker(settings: Settings) -> AsyncIterator[None]:
    """A scoring worker for the test run's stream."""
    async with running_scoring_worker(settings):
        yield


@pytest.fixture
async def open_moderator(chat_url: str, make_user: Any) -> AsyncIterator[OpenModerator]:
    """Connect (and subscribe) a moderator, a new one unless `user` and `token` are given."""
    clients: list[ModeratorClient] = []

    async def open_one(
        name: str = "Mo Derator", url: str = chat_url, account: tuple[User, str] | None = None
    ) -> Moderator:
        user, token = account or await make_user(Role.moderator, name)
        client = await ModeratorClient.connect(url, token)
        clients.append(client)
        assert (await client.call("subscribe", {}))["ok"]
        return user, client

    yield open_one
    for client in clients:
        if client.sio.connected:
            await client.close()

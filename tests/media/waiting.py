"""Waiting for media to arrive: generous bounds ("did not hang"), polled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

TIMEOUT_S = 60
POLL_S = 0.1


async def eventually(condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(TIMEOUT_S / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    pytest.fail(f"no {what} within {TIMEOUT_S} s")

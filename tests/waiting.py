"""Waiting for something that happens eventually: generous bounds ("did not hang"), polled."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import pytest

TIMEOUT_S = 60.0
POLL_S = 0.05


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = TIMEOUT_S
) -> None:
    """Until `check` (a function or a coroutine function) holds; fails after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        held = check()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(POLL_S)

"""Work a hub replica runs beside its app (fan-out publishing and resync, presence leases, the
moderation hand-off, Redis subscriptions): one task each, started with the app and cancelled,
then awaited, when it stops; and catch-ups asked for in bursts, run once per burst."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

_FIRST_BACKOFF_S = 0.5  # a failed catch-up's first retry; doubled up to _MAX_BACKOFF_S
_MAX_BACKOFF_S = 10.0


class BackgroundTask:
    """`run` as a named task between `start` and `stop`."""

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def every(seconds: float, step: Callable[[], Awaitable[None]], what: str) -> BackgroundTask:
    """Run `step` every `seconds` (the first time after one wait); a step that fails is
    logged as `what` and the next one runs on time.

    Stopping does not rely on the step letting the cancellation through: aioice's
    `Connection.close` (reached when a departure closes a member's SFU connection) awaits a
    task it has just cancelled and swallows the CancelledError, the one meant for its caller
    included, which used to leave the loop running and the hub's shutdown waiting for ever. So
    after each step the loop asks whether it was cancelled."""

    async def loop() -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            await asyncio.sleep(seconds)
            try:
                await step()
            except Exception as exc:
                log.warning("%s failed: %s", what, exc)
            if task.cancelling():  # the step swallowed the cancellation meant for this loop
                raise asyncio.CancelledError

    return BackgroundTask(what, loop)


class Coalesced:
    """`run` once now when asked (`soon`); asking while it runs makes one more run after it.
    A reconnect confirms every room channel again: thousands of asks, a few queries. A run
    that fails is run again, after a backoff, until one succeeds (or `stop`)."""

    def __init__(self, run: Callable[[], Awaitable[None]], what: str) -> None:
        self._run = run
        self._what = what
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._stopped = False

    def soon(self) -> None:
        if self._stopped:
            return
        if self._task is not None:
            self._again = True
            return
        self._task = asyncio.create_task(self._run_while_asked(), name=self._what)

    async def stop(self) -> None:
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_while_asked(self) -> None:
        backoff = _FIRST_BACKOFF_S
        try:
            self._again = True
            while self._again and not self._stopped:
                self._again = False
                try:
                    await self._run()
                    backoff = _FIRST_BACKOFF_S
                except Exception as exc:
                    log.warning("%s failed (again in %.1f s): %s", self._what, backoff, exc)
                    self._again = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

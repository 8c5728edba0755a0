"""A recording Socket.IO client for `/moderation`."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import socketio

EVENTS = ("flag", "flag_updated", "message", "message_edited", "message_deleted")


class ModeratorClient:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._arrived = asyncio.Condition()
        for name in EVENTS:
            self.sio.on(name, self._recorder(name), namespace="/moderation")

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            async with self._arrived:
                self.received[name].append(data)
                self._arrived.notify_all()

        return record

    @classmethod
    async def connect(cls, url: str, token: str) -> ModeratorClient:
        client = cls()
        await client.sio.connect(
            url, auth={"token": token}, namespaces=["/moderation"], transports=["websocket"]
        )
        return client

    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(
            event, payload, namespace="/moderation", timeout=10
        )
        return ack

    async def wait_for(self, name: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
        """The first `name` event satisfying `predicate`."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.received[name] if predicate(e)), None)

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: found() is not None), timeout)
        event = found()
        assert event is not None
        return event

    async def close(self) -> None:
        await self.sio.disconnect()

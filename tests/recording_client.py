"""Recording Socket.IO test clients: every event of interest is kept, in arrival order."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any, ClassVar, Self

import socketio


class RecordingClient:
    namespace: ClassVar[str]
    events: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._arrived = asyncio.Condition()
        for name in self.events:
            self.sio.on(name, self._recorder(name), namespace=self.namespace)

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            async with self._arrived:
                self.received[name].append(data)
                self._arrived.notify_all()

        return record

    @classmethod
    async def connect(cls, url: str, token: str) -> Self:
        client = cls()
        await client.sio.connect(
            url, auth={"token": token}, namespaces=[cls.namespace], transports=["websocket"]
        )
        return client

    async def call(self, event: str, *payload: Any, timeout: float = 10) -> dict[str, Any]:
        """Emit with an acknowledgement; several payloads go as several arguments."""
        data = payload[0] if len(payload) == 1 else tuple(payload) or None
        ack: dict[str, Any] = await self.sio.call(
            event, data, namespace=self.namespace, timeout=timeout
        )
        return ack

    async def wait_for(self, name: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """The first `count` `name` events, once that many arrived."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.received[name]) >= count), timeout
            )
        return self.received[name]

    async def wait_until(
        self, name: str, matches: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        """The first `name` event that `matches`, once it arrived."""

        def found() -> dict[str, Any] | None:
            return next((event for event in self.received[name] if matches(event)), None)

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: found() is not None), timeout)
        event = found()
        assert event is not None
        return event

    async def close(self) -> None:
        await self.sio.disconnect()


class ChatClient(RecordingClient):
    namespace = "/chat"
    events = (
        "message",
        "message_edited",
        "message_deleted",
        "presence",
        "typing",
        "receipt",
        "removed",
    )

    def seqs(self) -> list[int]:
        return [message["seq"] for message in self.received["message"]]


class ModeratorClient(RecordingClient):
    namespace = "/moderation"
    events = ("flag", "flag_updated", "message", "message_edited", "message_deleted")

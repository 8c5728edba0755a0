"""A recording Socket.IO test client for `/chat`."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import socketio

EVENTS = (
    "message",
    "message_edited",
    "message_deleted",
    "presence",
    "typing",
    "receipt",
    "removed",
)


class ChatClient:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._arrived = asyncio.Condition()
        for name in EVENTS:
            self.sio.on(name, self._recorder(name), namespace="/chat")

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            async with self._arrived:
                self.received[name].append(data)
                self._arrived.notify_all()

        return record

    @classmethod
    async def connect(cls, url: str, token: str) -> ChatClient:
        client = cls()
        await client.sio.connect(
            url, auth={"token": token}, namespaces=["/chat"], transports=["websocket"]
        )
        return client

    async def call(self, event: str, *payload: Any, timeout: float = 10) -> dict[str, Any]:
        """Emit with an acknowledgement; several payloads go as several arguments."""
        data = payload[0] if len(payload) == 1 else tuple(payload) or None
        ack: dict[str, Any] = await self.sio.call(event, data, namespace="/chat", timeout=timeout)
        return ack

    async def wait_for(self, name: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.received[name]) >= count), timeout
            )
        return self.received[name]

    def seqs(self) -> list[int]:
        return [message["seq"] for message in self.received["message"]]

    async def close(self) -> None:
        await self.sio.disconnect()

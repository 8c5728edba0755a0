"""A lean Socket.IO v5 client (Engine.IO v4, websocket transport only) on a raw websocket
(`bench.chat.raw_websocket`).

python-socketio's client spends a task and several queues per packet; at 100,000 deliveries/s
that would make the tester the bottleneck. This one speaks just what the benchmark needs:
connect one namespace with an auth payload, emit with an acknowledgement callback, hand raw
event packets to a callback, and answer the server's Engine.IO pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import msgspec

from bench.chat.raw_websocket import RawWebSocket

_PING, _PONG = "2", "3"


class ConnectRefused(Exception):
    """The server refused the namespace connection (e.g. `unauthorized`)."""


AckCallback = Callable[[Any], None]


class SocketIOClient:
    """One connection to one namespace. `on_event` gets each event packet's JSON array text
    (e.g. `["message",{...}]`); `on_close` is called once if the server drops us."""

    def __init__(
        self,
        namespace: str,
        on_event: Callable[[str], None],
        on_close: Callable[[], None],
    ) -> None:
        self._namespace = namespace
        self._on_event = on_event
        self._on_close = on_close
        self._ws: RawWebSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._acks: dict[int, AckCallback] = {}
        self._calls: set[asyncio.Future[Any]] = set()  # `call`s waiting for their answer
        self._next_ack_id = 0
        self._closing = False
        self._event_prefix = f"42{namespace},"
        self._ack_prefix = f"43{namespace},"

    @property
    def pending_acks(self) -> int:
        return len(self._acks)

    async def connect(self, base_url: str, auth: dict[str, Any]) -> None:
        url = f"{base_url}/socket.io/?EIO=4&transport=websocket"
        ws = self._ws = await RawWebSocket.connect(url)
        opening = await ws.receive_str()
        if not opening.startswith("0"):
            raise ConnectionError(f"expected an Engine.IO open packet, got {opening[:40]!r}")
        ws.send_str(f"40{self._namespace},{json.dumps(auth)}")
        while (reply := await ws.receive_str()) == _PING:
            ws.send_str(_PONG)
        if reply.startswith(f"44{self._namespace},"):
            refusal = json.loads(reply.split(",", 1)[1])
            raise ConnectRefused(refusal.get("message", "refused"))
        if not reply.startswith(f"40{self._namespace},"):
            raise ConnectionError(f"unexpected connect reply {reply[:60]!r}")
        self._reader = asyncio.create_task(self._read())

    async def emit(self, event: str, data: Any, on_ack: AckCallback) -> None:
        assert self._ws is not None
        ack_id = self._next_ack_id = self._next_ack_id + 1
        self._acks[ack_id] = on_ack
        self._ws.send_str(f"42{self._namespace},{ack_id}{json.dumps([event, data])}")

    async def call(self, event: str, data: Any, timeout: float) -> Any:
        """Emit and wait for the acknowledgement."""
        answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls.add(answered)
        try:
            await self.emit(event, data, answered.set_result)
            return await asyncio.wait_for(answered, timeout)
        finally:
            self._calls.discard(answered)

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self._ws is not None
        ws = self._ws
        event_prefix, ack_prefix = self._event_prefix, self._ack_prefix
        async for packet in ws:
            if packet.startswith(event_prefix):
                self._on_event(packet[len(event_prefix) :])
            elif packet == _PING:
                ws.send_str(_PONG)
            elif packet.startswith(ack_prefix):
                self._acknowledge(packet[len(ack_prefix) :])
        for answered in self._calls:  # no answer comes on a closed connection
            if not answered.done():
                answered.set_exception(ConnectionError("the server closed the connection"))
        if not self._closing:
            self._on_close()

    def _acknowledge(self, rest: str) -> None:
        bracket = rest.index("[")
        callback = self._acks.pop(int(rest[:bracket]), None)
        if callback is not None:
            arguments = msgspec.json.decode(rest[bracket:])
            callback(arguments[0] if arguments else None)

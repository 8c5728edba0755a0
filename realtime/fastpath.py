"""The broadcast fast path: each event is encoded once, framed once as a WebSocket frame, and
written straight to every recipient's socket.

python-socketio's manager starts a task per recipient, and engine.io then queues the packet for
a per-socket writer task that frames it again; at tens of thousands of deliveries per second
that machinery, not Python, is the limit. Here the frames of one event-loop tick are collected
per recipient and written at the end of the tick, all of a recipient's frames in one write
(`realtime.engine.DirectQueue`): when the hub falls behind, a tick carries several messages and
each recipient costs one system call for all of them instead of one each, so the hub catches
up instead of queueing. A recipient still on long-polling gets the packets queued, in order.
Emits that expect acknowledgements take python-socketio's own path.

With a write delay (`FANOUT_WRITE_DELAY_MS`) the writes wait that long after the first emit
instead of the end of its tick, so the messages of that window share each recipient's write:
fewer system calls per delivery, for that much added latency. What waits is written before
the server disconnects anyone (`flush`) and before a drain closes the transports.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from engineio import packet as eio_packet

from realtime import _socketio as internals
from realtime.frames import packet_frame


class BroadcastManager(socketio.AsyncManager):  # type: ignore[misc]
    """A client manager whose emits write one prebuilt frame to every recipient, and which
    knows each client's rooms, so a disconnect costs that client's rooms rather than a scan of
    every room of the namespace."""

    def __init__(self, write_delay_s: float = 0.0) -> None:
        super().__init__()
        self._write_delay_s = write_delay_s
        self._rooms_of: dict[tuple[str, str], set[str | None]] = {}
        # This tick's deliveries, per engine.io socket in emit order: (frame, packet).
        self._pending: dict[Any, list[tuple[bytes, eio_packet.Packet]]] = {}

    def basic_enter_room(
        self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        return [room for room in self._rooms_of.get((namespace, sid), ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # python-socketio's own version scans a copy of every room of the namespace.
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        internals.forget_client(self, sid, namespace)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None or not internals.has_namespace(self, namespace):
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        arguments = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        encoded = internals.event_packet(self.server, namespace, [event, *arguments]).encode()
        if isinstance(encoded, list):  # binary attachments: not on the fast path
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, to=to, **kwargs
            )
            return
        queued = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        delivery = (packet_frame(queued), queued)
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        open_socket = internals.open_socket_finder(self.server.eio)
        pending = self._pending
        if not pending:
            loop = asyncio.get_running_loop()
            if self._write_delay_s:
                loop.call_later(self._write_delay_s, self.flush)
            else:
                loop.call_soon(self.flush)  # at the end of this tick
        for sid, eio_sid in self.get_participants(namespace, to or room):
            if sid in skipped:
                continue
            socket = open_socket(eio_sid)
            if socket is None:
                continue
            deliveries = pending.get(socket)
            if deliveries is None:
                pending[socket] = [delivery]
            else:
                deliveries.append(delivery)

    def flush(self) -> None:
        """Write what waits: one write per recipient for all of its frames. Called at the end
        of the tick (or the write delay), and by the server before it closes connections."""
        pending, self._pending = self._pending, {}
        for socket, deliveries in pending.items():
            if not internals.is_open(socket):
                continue
            frames = (
                deliveries[0][0]
                if len(deliveries) == 1
                else b"".join(frame for frame, _ in deliveries)
            )
            internals.queue_of(socket).write_frames(frames, (packet for _, packet in deliveries))

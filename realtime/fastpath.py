"""The broadcast fast path: each event is encoded once, framed once as a WebSocket frame, and
written straight to every recipient's socket.

python-socketio's manager starts a task per recipient, and engine.io then queues the packet for
a per-socket writer task that frames it again; at tens of thousands of deliveries per second
that machinery, not Python, is the limit. Here the emits of one event-loop tick are collected
and written at the end of the tick (`realtime.engine.DirectQueue`): a tick's only emit goes
straight to each recipient, and when the hub falls behind and a tick carries several, all of a
recipient's frames go in one write, so each recipient costs one system call for all of them
instead of one each and the hub catches up instead of queueing. A recipient still on
long-polling gets the packets queued, in order. Emits that expect acknowledgements take
python-socketio's own path.

A room's recipients (their sockets and queues) are looked up once and kept until someone
enters or leaves it, so a busy room costs no lookups per message.

With a write delay (`FANOUT_WRITE_DELAY_MS`) the writes wait that long after the first emit
instead of the end of its tick, so the messages of that window share each recipient's write:
fewer system calls per delivery, for that much added latency. What waits is written before
the server disconnects anyone (`flush`) and before a drain closes the transports.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import socketio
from engineio import packet as eio_packet

from realtime import _socketio as internals
from realtime.frames import packet_frame


class _Recipient(NamedTuple):
    sid: str
    socket: Any  # engineio.async_socket.AsyncSocket
    queue: Any  # its realtime.engine.DirectQueue


class _Emit(NamedTuple):
    frame: bytes
    packets: tuple[eio_packet.Packet]
    recipients: list[_Recipient]
    skipped: frozenset[str | None]


class BroadcastManager(socketio.AsyncManager):  # type: ignore[misc]
    """A client manager whose emits write one prebuilt frame to every recipient, and which
    knows each client's rooms, so a disconnect costs that client's rooms rather than a scan of
    every room of the namespace."""

    def __init__(self, write_delay_s: float = 0.0) -> None:
        super().__init__()
        self._write_delay_s = write_delay_s
        self._rooms_of: dict[tuple[str, str], set[str | None]] = {}
        # The recipients of each room of more than one that was emitted to since it changed.
        self._recipients: dict[tuple[str, str | None], list[_Recipient]] = {}
        self._emits: list[_Emit] = []  # this tick's (or this write delay's), in order

    def basic_enter_room(
        self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)
        self._recipients.pop((namespace, room), None)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        self._recipients.pop((namespace, room), None)
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
        packet = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        skipped = frozenset(skip_sid if isinstance(skip_sid, list) else (skip_sid,))
        recipients = self._recipients_of(namespace, to or room)
        if not self._emits:
            loop = asyncio.get_running_loop()
            if self._write_delay_s:
                loop.call_later(self._write_delay_s, self.flush)
            else:
                loop.call_soon(self.flush)  # at the end of this tick
        self._emits.append(_Emit(packet_frame(packet), (packet,), recipients, skipped))

    def _recipients_of(self, namespace: str, room: Any) -> list[_Recipient]:
        # Several rooms named at once (`to=[...]`) are looked up each time: no enter or leave
        # would clear what was kept for them.
        keepable = room is None or isinstance(room, str)
        recipients = self._recipients.get((namespace, room)) if keepable else None
        if recipients is None:
            open_socket = internals.open_socket_finder(self.server.eio)
            recipients = [
                _Recipient(sid, socket, internals.queue_of(socket))
                for sid, eio_sid in self.get_participants(namespace, room)
                if (socket := open_socket(eio_sid)) is not None
            ]
            if keepable and len(recipients) > 1:  # a client's own room is looked up each time
                self._recipients[(namespace, room)] = recipients
        return recipients

    def flush(self) -> None:
        """Write what waits: one write per recipient for all of its frames. Called at the end
        of the tick (or the write delay), and by the server before it closes connections."""
        emits, self._emits = self._emits, []
        is_open = internals.is_open
        if len(emits) == 1:
            frame, packets, recipients, skipped = emits[0]
            for sid, socket, queue in recipients:
                if is_open(socket) and sid not in skipped:
                    queue.write_frames(frame, packets)
            return
        # Several emits: each recipient's frames, in emit order, in one write.
        waiting: dict[Any, tuple[Any, list[_Emit]]] = {}
        for emit in emits:
            for sid, socket, queue in emit.recipients:
                if sid in emit.skipped:
                    continue
                if (entry := waiting.get(socket)) is None:
                    waiting[socket] = (queue, [emit])
                else:
                    entry[1].append(emit)
        for socket, (queue, theirs) in waiting.items():
            if is_open(socket):
                frames = b"".join(emit.frame for emit in theirs)
                queue.write_frames(frames, [emit.packets[0] for emit in theirs])

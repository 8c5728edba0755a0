"""python-socketio's server on the lean transport (`realtime.engine`), with what one
connection can make the hub hold bounded (see `HubSocketServer`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NamedTuple

from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet

from realtime import _socketio as internals
from realtime.drain import Drain
from realtime.engine import LeanEngineServer, use_lean_transport
from realtime.event_slots import Event, EventSlots, Handlers
from realtime.protocol import ErrorCode, EventError
from realtime.websocket import WebSocketConnection, keep_running

log = logging.getLogger(__name__)

EVENTS_IN_FLIGHT = 16  # event handlers one connection may have running at once
PUSH_LIMIT = 256  # events a client may send once they were all busy, before they all finish
NAMESPACE_TIMEOUT_S = 10.0  # an Engine.IO connection without a namespace lives this long
REFUSED_GRACE_S = 1.0  # ... and this long once a connect was refused
MAX_ATTACHMENTS = 10  # binary attachments a packet may announce

_LIFECYCLE = frozenset(("connect", "disconnect"))  # python-socketio's reserved event names
_DRAINING = EventError(ErrorCode.unavailable, "this server is shutting down: reconnect and retry")


class _Assembly(NamedTuple):
    """A BINARY_EVENT or BINARY_ACK waiting for its attachments."""

    packet: Any  # python-socketio's Packet
    held: int  # bytes of the attachments received so far


class _Violation(Exception):
    """What the client sent is not Socket.IO: its connection is closed."""


class HubSocketServer(internals.SocketIOServer):
    """python-socketio on the lean transport. `eio.handle_request` also takes the environ of
    a websocket served below aiohttp (`realtime.websocket`), whose refusals it returns as
    `(status, body)` rather than an aiohttp response.

    What a connection can make the hub hold is bounded here:
    - EVENTS_IN_FLIGHT handlers of its events run at once. The next event waits for a slot,
      and so does the connection's reader: the transport stops being read and the client's
      writes back up in TCP. Once an event found no slot free, the client may send
      PUSH_LIMIT more before its events have all finished; past that it is pushing without
      waiting for its acks, and is disconnected. A client that waits for its acks, even
      for a hundred at once, lets its events finish between bursts; so does a real
      client's largest burst, joining every listed conversation after a reconnect.
    - An Engine.IO connection must have a namespace connected within `namespace_timeout`
      seconds of opening or of losing its last namespace, else it is closed; after a refused
      connect, within REFUSED_GRACE_S (the official client closes such a connection itself).
    - A packet announces at most MAX_ATTACHMENTS binary attachments, holding at most
      max_http_buffer_size bytes in all until they have arrived.
    - A packet that is not Socket.IO (undecodable, of an unknown or unexpected type, an event
      without a name, attachments past those bounds) closes the connection with one log line,
      as the reference server (socket.io's parser) does. Client-emitted `connect` and
      `disconnect` events are not lifecycle events: they are refused with an `invalid` ack
      if they ask for one, and otherwise ignored.

    While the replica drains (`realtime.drain`), every event is answered `unavailable`.
    """

    engine_class = LeanEngineServer

    def __init__(self, *, namespace_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.websockets: set[WebSocketConnection] = set()  # those served below aiohttp
        self.drain = Drain()
        use_lean_transport(self.eio)
        # Read when the server is built, so that a test can shorten it for the hub it starts.
        self.namespace_timeout = (
            NAMESPACE_TIMEOUT_S if namespace_timeout is None else namespace_timeout
        )
        self._deadlines: dict[str, asyncio.TimerHandle] = {}  # connections with no namespace
        self._slots: dict[str, EventSlots] = {}  # connections with events running
        self._assemblies: dict[str, _Assembly] = {}  # connections receiving attachments
        self._engines: set[str] = set()  # every open Engine.IO connection, for the drain
        self._handlers = Handlers()  # the tasks running `_run_events`

    # connections

    def engine_opened(self, eio_sid: str) -> None:
        self._engines.add(eio_sid)
        self._arm_deadline(eio_sid, self.namespace_timeout)

    def engine_closed(self, eio_sid: str) -> None:
        self._engines.discard(eio_sid)
        deadline = self._deadlines.pop(eio_sid, None)
        if deadline is not None:
            deadline.cancel()
        self._assemblies.pop(eio_sid, None)
        slots = self._slots.pop(eio_sid, None)
        if slots is not None:
            slots.take_next()  # the reader need not wait

    async def disconnect(self, sid: str, namespace: str | None = None, **kwargs: Any) -> None:
        eio_sid = self.eio_sid_of(sid, namespace or "/")
        self.manager.flush()  # what was emitted to them goes before the DISCONNECT
        await super().disconnect(sid, namespace, **kwargs)
        if eio_sid is not None:
            self._check_namespaces(eio_sid, self.namespace_timeout)

    def _check_namespaces(self, eio_sid: str, within: float) -> None:
        """Give a connection left without a namespace `within` seconds to connect one."""
        if self.has_namespaces(eio_sid):
            deadline = self._deadlines.pop(eio_sid, None)
            if deadline is not None:
                deadline.cancel()
            return
        socket = internals.engine_socket(self.eio, eio_sid)
        if socket is not None and internals.is_open(socket):
            self._arm_deadline(eio_sid, within)

    def _arm_deadline(self, eio_sid: str, within: float) -> None:
        """Close the connection in `within` seconds if it has no namespace then; an earlier
        deadline stands (refusals and reconnects cannot put it off)."""
        loop = asyncio.get_running_loop()
        deadline = self._deadlines.get(eio_sid)
        if deadline is not None:
            if deadline.when() <= loop.time() + within:
                return
            deadline.cancel()
        self._deadlines[eio_sid] = loop.call_later(within, self._deadline_passed, eio_sid)

    def _deadline_passed(self, eio_sid: str) -> None:
        del self._deadlines[eio_sid]
        if not self.has_namespaces(eio_sid):
            log.info("closing engine.io session %s: no namespace connected", eio_sid)
            keep_running(self._close(eio_sid))

    async def _close(self, eio_sid: str) -> None:
        socket = internals.engine_socket(self.eio, eio_sid)
        if socket is not None:
            await internals.end_session(socket)

    # packets

    async def engine_message(self, eio_sid: str, data: str | bytes) -> None:
        socket = internals.engine_socket(self.eio, eio_sid)
        if socket is None or not internals.is_open(socket):
            return  # what a transport still reads after the connection was closed
        try:
            assembly = self._assemblies.get(eio_sid)
            if assembly is not None:
                await self._attachment(eio_sid, assembly, data)
            else:
                await self._packet(eio_sid, data)
        except _Violation as violation:
            log.info("closing engine.io session %s: %s", eio_sid, violation)
            await internals.end_session(socket)

    async def _packet(self, eio_sid: str, data: str | bytes) -> None:
        if not isinstance(data, str):
            raise _Violation("a binary message that no packet announced")
        try:
            packet = self.packet_class(encoded_packet=data)
        except Exception as error:  # what python-socketio's decoder raises on bad input
            raise _Violation(f"undecodable packet ({error!r:.200})") from None
        kind, namespace = packet.packet_type, packet.namespace or "/"
        if kind == sio_packet.EVENT:
            await self._event(eio_sid, namespace, packet.id, packet.data)
        elif kind == sio_packet.ACK:
            if packet.id is None or not isinstance(packet.data, list):
                raise _Violation("an ack without an id or arguments")
            await self.acknowledged(eio_sid, namespace, packet.id, packet.data)
        elif kind == sio_packet.CONNECT:
            await self.connect_namespace(eio_sid, namespace, packet.data)
            self._check_namespaces(eio_sid, REFUSED_GRACE_S)
        elif kind == sio_packet.DISCONNECT:
            await self.disconnect_namespace(eio_sid, namespace)
            self._check_namespaces(eio_sid, self.namespace_timeout)
        elif kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            if not 0 < packet.attachment_count <= MAX_ATTACHMENTS:
                raise _Violation(f"a packet announcing {packet.attachment_count} attachments")
            if self.connected_sid(eio_sid, namespace) is None:
                raise _Violation(f"a binary packet for {namespace}, which is not connected")
            self._assemblies[eio_sid] = _Assembly(packet, 0)
        else:
            raise _Violation(f"a packet of type {kind!r}")

    async def _attachment(self, eio_sid: str, assembly: _Assembly, data: str | bytes) -> None:
        if not isinstance(data, bytes):
            raise _Violation("a text message where an attachment was due")
        held = assembly.held + len(data)
        if held > self.eio.max_http_buffer_size:
            raise _Violation(f"attachments past {self.eio.max_http_buffer_size} bytes")
        packet = assembly.packet
        try:
            complete = packet.add_attachment(data)
        except Exception as error:  # a placeholder naming an attachment that is not there
            raise _Violation(f"attachments do not fit their packet ({error!r:.200})") from None
        if not complete:
            self._assemblies[eio_sid] = _Assembly(packet, held)
            return
        del self._assemblies[eio_sid]
        namespace = packet.namespace or "/"
        if packet.packet_type == sio_packet.BINARY_EVENT:
            await self._event(eio_sid, namespace, packet.id, packet.data)
        elif isinstance(packet.data, list) and packet.id is not None:
            await self.acknowledged(eio_sid, namespace, packet.id, packet.data)
        else:
            raise _Violation("an ack without an id or arguments")

    # events

    async def _event(self, eio_sid: str, namespace: str, ack_id: int | None, data: Any) -> None:
        if not (isinstance(data, list) and data and isinstance(data[0], str)):
            raise _Violation("an event without a name")
        sid = self.connected_sid(eio_sid, namespace)
        if sid is None:
            return  # python-socketio drops events of a namespace the client is not in
        if data[0] in _LIFECYCLE or self.drain.refusing:
            refusal = _DRAINING
            if data[0] in _LIFECYCLE:
                refusal = EventError(ErrorCode.invalid, f"{data[0]!r} is not an event to emit")
            if ack_id is not None:
                await self.send_ack(eio_sid, namespace, ack_id, refusal.ack())
            return
        await self._admit(Event(sid, eio_sid, data, namespace, ack_id))

    async def _admit(self, event: Event) -> None:
        """Start `event`'s handler if its connection has a slot free, else wait until a
        running handler takes it over (or disconnect a client that keeps pushing)."""
        slots = self._slots.get(event.eio_sid)
        if slots is None:
            slots = self._slots[event.eio_sid] = EventSlots()
        if slots.backlogged:
            slots.pushed += 1
            if slots.pushed > PUSH_LIMIT:
                log.info(
                    "closing engine.io session %s: %d events pushed past %d unanswered ones",
                    event.eio_sid,
                    PUSH_LIMIT,
                    EVENTS_IN_FLIGHT,
                )
                await self._close(event.eio_sid)
                return
        if slots.running < EVENTS_IN_FLIGHT:
            slots.running += 1
            self._handlers.start(self._run_events(slots, event))
            return
        slots.backlogged = True
        taken = slots.taken = asyncio.get_running_loop().create_future()
        slots.next_event = event
        await taken

    async def _run_events(self, slots: EventSlots, event: Event) -> None:
        """Run `event`, then whichever event the connection's reader hands over: under load a
        slot's task serves one event after another."""
        try:
            while True:
                # Not for a client that left the namespace (or closed) since it was sent.
                if self.connected_sid(event.eio_sid, event.namespace) == event.sid:
                    try:
                        await self.run_event(*event)
                    except Exception:
                        log.exception("%s %s failed", event.namespace, event.data[0])
                if slots.next_event is None and slots.backlogged:
                    # The reader, woken by a hand-over, may be bringing the next event: a
                    # slot kept for it keeps the backlog from looking drained.
                    await asyncio.sleep(0)
                next_event = slots.take_next()
                if next_event is None:
                    return
                event = next_event
        finally:
            waiting = slots.take_next()
            if waiting is not None:  # cancelled while the reader waited: its event gets a task
                self._handlers.start(self._run_events(slots, waiting))
            else:
                slots.running -= 1
                if not slots.running and self._slots.get(event.eio_sid) is slots:
                    del self._slots[event.eio_sid]  # drained: the client let up

    # draining

    def open_sockets(self) -> list[AsyncSocket]:
        """Every Engine.IO connection still open."""
        find = internals.open_socket_finder(self.eio)
        return [socket for eio_sid in list(self._engines) if (socket := find(eio_sid))]

    async def finish_events(self, within: float) -> int:
        """While the drain refuses events: answer those waiting for a slot `unavailable`, wait
        up to `within` seconds for the running handlers (each writes its ack as it ends),
        then cancel those still running. How many were cancelled."""
        for slots in list(self._slots.values()):
            waiting = slots.take_next()
            if waiting is not None and waiting.ack_id is not None:
                await self.send_ack(
                    waiting.eio_sid, waiting.namespace, waiting.ack_id, _DRAINING.ack()
                )
        return await self._handlers.finish(within)

"""python-socketio's client manager and server, as the hub's server and fast path use them."""

from __future__ import annotations

from typing import Any

import engineio
import socketio
from socketio import packet as sio_packet

# python-socketio's client manager


def has_namespace(manager: socketio.AsyncManager, namespace: str) -> bool:
    """Whether anyone is connected to `namespace` (`BaseManager.rooms` is keyed by it)."""
    return namespace in manager.rooms


def forget_client(manager: socketio.AsyncManager, sid: str, namespace: str) -> None:
    """The rest of `BaseManager.basic_disconnect` once the client left its rooms: drop its
    ack callbacks and its entries in `pending_connect` / `pending_disconnect`."""
    manager.callbacks.pop(sid, None)
    for pending in (manager.pending_connect, manager.pending_disconnect):
        waiting = pending.get(namespace)
        if waiting is not None and sid in waiting:
            waiting.remove(sid)
            if not waiting:
                del pending[namespace]


def event_packet(server: socketio.AsyncServer, namespace: str, data: list[Any]) -> Any:
    """An EVENT packet of the server's serializer (`packet_class`). The hub sends only JSON,
    so `binary=False` spares the packet a walk of `data` looking for bytes."""
    return server.packet_class(sio_packet.EVENT, namespace=namespace, data=data, binary=False)


# python-socketio's server


class SocketIOServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server with its engine.io-facing dispatch handed to three hooks
    (`engine_opened`, `engine_message`, `engine_closed`), and its own handling of each packet
    kind available to them. Subclasses set `engine_class`."""

    engine_class: type[engineio.AsyncServer] = engineio.AsyncServer

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        """Relies on python-socketio building its engine.io server from this method."""
        return self.engine_class

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        """Relies on engine.io calling it (its "connect" handler) for each new socket."""
        await super()._handle_eio_connect(eio_sid, environ)
        self.engine_opened(eio_sid)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        """Relies on engine.io calling it (its "message" handler, awaited in `receive`) for
        each message, text or binary, of a socket."""
        await self.engine_message(eio_sid, data)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        """Relies on engine.io calling it (its "disconnect" handler) once per socket; the
        original disconnects every namespace of the socket."""
        await super()._handle_eio_disconnect(eio_sid, reason)
        self.engine_closed(eio_sid)

    # the hooks

    def engine_opened(self, eio_sid: str) -> None:
        """An Engine.IO connection opened; no namespace is connected yet."""

    async def engine_message(self, eio_sid: str, data: str | bytes) -> None:
        """A message of an Engine.IO connection: a Socket.IO packet or an attachment."""

    def engine_closed(self, eio_sid: str) -> None:
        """An Engine.IO connection closed, after its namespaces were disconnected."""

    # python-socketio's handling of each packet kind

    async def connect_namespace(self, eio_sid: str, namespace: str | None, auth: Any) -> None:
        """CONNECT: `_handle_connect(eio_sid, namespace, data)` answers CONNECT or
        CONNECT_ERROR after the namespace's connect handler."""
        await self._handle_connect(eio_sid, namespace, auth)

    async def disconnect_namespace(self, eio_sid: str, namespace: str | None) -> None:
        """DISCONNECT from the client: `_handle_disconnect(eio_sid, namespace, reason)`."""
        await self._handle_disconnect(eio_sid, namespace, self.reason.CLIENT_DISCONNECT)

    async def acknowledged(
        self, eio_sid: str, namespace: str | None, ack_id: int | None, data: list[Any]
    ) -> None:
        """ACK: `_handle_ack(eio_sid, namespace, id, data)` runs the emit's callback."""
        await self._handle_ack(eio_sid, namespace, ack_id, data)

    async def run_event(
        self, sid: str, eio_sid: str, data: list[Any], namespace: str, ack_id: int | None
    ) -> None:
        """EVENT: `_trigger_event(event, namespace, sid, *args)` runs the handler of `data[0]`
        with `data[1:]`, returning `not_handled` when there is none; its return value is the
        ACK if asked (what `_handle_event_internal` does, less its walk of the ACK for bytes).
        (`_handle_event`, which calls that, would start a task per event.)"""
        value = await self._trigger_event(data[0], namespace, sid, *data[1:])
        if value is not self.not_handled and ack_id is not None:
            # As python-socketio: None acknowledges with no argument, a tuple with several.
            args = [] if value is None else list(value) if isinstance(value, tuple) else [value]
            await self._send_ack_packet(eio_sid, namespace, ack_id, args)

    async def send_ack(self, eio_sid: str, namespace: str, ack_id: int, value: Any) -> None:
        """An ACK packet with `value` as its one argument (`_send_packet`)."""
        await self._send_ack_packet(eio_sid, namespace, ack_id, [value])

    async def _send_ack_packet(
        self, eio_sid: str, namespace: str, ack_id: int, args: list[Any]
    ) -> None:
        """JSON only, as event_packet."""
        packet = self.packet_class(
            sio_packet.ACK, namespace=namespace, id=ack_id, data=args, binary=False
        )
        await self._send_packet(eio_sid, packet)

    def connected_sid(self, eio_sid: str, namespace: str) -> str | None:
        """The Socket.IO sid of the connection in `namespace`, if it is connected there
        (not connecting, not disconnecting): `manager.sid_from_eio_sid` and `is_connected`."""
        sid: str | None = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return None
        return sid

    def eio_sid_of(self, sid: str, namespace: str) -> str | None:
        """The Engine.IO sid of a Socket.IO sid (`manager.eio_sid_from_sid`)."""
        eio_sid: str | None = self.manager.eio_sid_from_sid(sid, namespace)
        return eio_sid

    def has_namespaces(self, eio_sid: str) -> bool:
        """Whether the connection is connected to any namespace (`manager.get_namespaces`)."""
        return any(
            self.connected_sid(eio_sid, namespace) is not None
            for namespace in self.manager.get_namespaces()
        )

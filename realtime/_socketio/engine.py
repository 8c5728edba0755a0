"""engine.io's sockets and drivers, as the lean transport and the fast path use them."""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import engineio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

log = logging.getLogger(__name__)


def replace_drivers(
    eio: engineio.AsyncServer,
    *,
    websocket: Callable[[Any, engineio.AsyncServer], Any],
    translate_request: Callable[[Callable[[Any], dict[str, Any]], Any], dict[str, Any]],
    make_response: Callable[..., Any],
) -> None:
    """Swap three of engine.io's async-mode drivers (`AsyncServer._async`): "websocket" is
    called as `websocket(socket._websocket_handler, server)` and the result awaited with the
    environ; "translate_request" (request -> environ) and "make_response" ((status, headers,
    body, environ) -> response) get the driver they replace as their first argument."""
    drivers = eio._async
    eio._async = {
        **drivers,
        "websocket": websocket,
        "translate_request": partial(translate_request, drivers["translate_request"]),
        "make_response": partial(make_response, drivers["make_response"]),
    }


def socket_of(websocket_handler: Any) -> AsyncSocket:
    """The socket whose websocket driver was started: engine.io passes the driver its
    socket's bound `_websocket_handler`."""
    return websocket_handler.__self__


def pinged_socket(target: Any) -> AsyncSocket | None:
    """The socket if `target` (given to `start_background_task`) is its `_send_ping`, the
    task engine.io starts after each PONG to sleep `ping_interval` and then ping."""
    if getattr(target, "__func__", None) is AsyncSocket._send_ping:
        return target.__self__
    return None


def send_ping(socket: AsyncSocket) -> None:
    """What `AsyncSocket._send_ping` does after its sleep: stamp `last_ping` (which
    `check_ping_timeout` reads) and queue a PING, unless the socket is closing."""
    if is_open(socket):
        socket.last_ping = time.time()
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.PING))


def engine_socket(eio: engineio.AsyncServer, eio_sid: str) -> AsyncSocket | None:
    """The socket of `eio_sid`, open or not, from `AsyncServer.sockets`."""
    return eio.sockets.get(eio_sid)


def open_socket_finder(eio: engineio.AsyncServer) -> Callable[[str], AsyncSocket | None]:
    """`engine_socket` and `is_open` in one call, for loops over many recipients."""
    sockets = eio.sockets

    def find(eio_sid: str) -> AsyncSocket | None:
        socket = sockets.get(eio_sid)
        if socket is None or socket.closing or socket.closed:
            return None
        return socket

    return find


def is_open(socket: AsyncSocket) -> bool:
    """`state` is not CLOSING or CLOSED, in two lookups (asked of every recipient)."""
    return not socket.closing and not socket.closed


class EngineState(enum.Enum):
    """Where an engine.io socket is (engine.io keeps it in five flags, which `state` reads)."""

    OPENING = enum.auto()  # a websocket connect engine.io accepted, its websocket not attached
    POLLING = enum.auto()  # `connected` at connect, for a long-polling client
    UPGRADING = enum.auto()  # polling, and probing a websocket (`upgrading`)
    WEBSOCKET = enum.auto()  # `upgraded`: see `mark_websocket`
    CLOSING = enum.auto()
    CLOSED = enum.auto()


def state(socket: AsyncSocket) -> EngineState:
    """The socket's state (`closed`, `closing`, `upgraded`, `upgrading`, `connected`)."""
    if socket.closed:
        return EngineState.CLOSED
    if socket.closing:
        return EngineState.CLOSING
    if socket.upgraded:
        return EngineState.WEBSOCKET
    if socket.upgrading:
        return EngineState.UPGRADING
    return EngineState.POLLING if socket.connected else EngineState.OPENING


def mark_websocket(socket: AsyncSocket) -> None:
    """Tell engine.io the socket now speaks websocket: `connected` and `upgraded` (polling
    requests are refused from now on, and no more upgrades are offered)."""
    socket.connected = socket.upgraded = True


@contextlib.contextmanager
def upgrading(socket: AsyncSocket) -> Iterator[None]:
    """While a polling socket probes a websocket: `upgrading` makes engine.io answer its
    pending polls with NOOPs."""
    socket.upgrading = True
    try:
        yield
    finally:
        socket.upgrading = False


def queue_of(socket: AsyncSocket) -> Any:
    """The socket's packet queue, `AsyncSocket.queue` (made by `AsyncServer.create_queue`)."""
    return socket.queue


class NotEngineIO(ValueError):
    """A client's message that is not an Engine.IO packet: the reference server closes the
    transport, and so do ours."""


async def receive(socket: AsyncSocket, message: str | bytes) -> bool:
    """Hand one message of the client's transport to its socket; False once the socket is
    closed (stop reading). Relies on `engineio.packet.Packet` raising on what it cannot
    decode (NotEngineIO here), `AsyncSocket.receive` logging `packet_names[packet_type]` (so
    a type past that list, which decodes, would raise IndexError: NotEngineIO too) and
    raising `UnknownPacketError` (OPEN, PING, NOOP from a client: ignored) and
    `SocketIsClosedError`."""
    try:
        packet = eio_packet.Packet(encoded_packet=message)
    except Exception as error:  # ValueError, binascii.Error
        raise NotEngineIO(repr(error)) from None
    if not 0 <= packet.packet_type < len(eio_packet.packet_names):
        raise NotEngineIO(f"unknown packet type {packet.packet_type}")
    try:
        await socket.receive(packet)
    except eio_exceptions.UnknownPacketError:
        pass
    except eio_exceptions.SocketIsClosedError:
        return False
    except Exception:
        log.exception("engine.io receive failed")
    return not socket.closed


async def end_session(socket: AsyncSocket) -> None:
    """Close a socket from the server's side: `AsyncSocket.close` runs the disconnect
    handlers and sends a CLOSE packet (the websocket queue closes the websocket after it),
    not waiting for a polling client to fetch it, as `AsyncServer.disconnect` would."""
    if is_open(socket):
        await socket.close(wait=False, reason=socket.server.reason.SERVER_DISCONNECT)


async def close_socket(socket: AsyncSocket) -> None:
    """Close a socket whose transport is gone (no CLOSE packet) and forget it at once rather
    than at engine.io's next sweep of `AsyncServer.sockets`."""
    await socket.close(wait=False, abort=True, reason=socket.server.reason.TRANSPORT_CLOSE)
    socket.server.sockets.pop(socket.sid, None)

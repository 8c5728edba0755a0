"""What `realtime._socketio` relies on in engine.io and python-socketio, checked against
the installed versions: an upgrade that renames, re-signs or changes the behaviour of any of it
fails here, rather than somewhere in the transport."""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from typing import Any

import engineio
import pytest
import socketio
from engineio import async_server as eio_async_server
from engineio import async_socket as eio_async_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet

from realtime import _socketio as internals
from realtime.engine import DirectQueue, LeanEngineServer, LeanWebSocket
from realtime.fastpath import BroadcastManager
from realtime.socket_server import HubSocketServer


def parameters(function: Any) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


@pytest.mark.parametrize(
    ("owner", "method", "expected"),
    [
        (socketio.AsyncServer, "_engineio_server_class", []),
        (socketio.AsyncServer, "_handle_eio_connect", ["eio_sid", "environ"]),
        (socketio.AsyncServer, "_handle_eio_message", ["eio_sid", "data"]),
        (socketio.AsyncServer, "_handle_eio_disconnect", ["eio_sid", "reason"]),
        (socketio.AsyncServer, "_handle_connect", ["eio_sid", "namespace", "data"]),
        (socketio.AsyncServer, "_handle_disconnect", ["eio_sid", "namespace", "reason"]),
        (socketio.AsyncServer, "_handle_ack", ["eio_sid", "namespace", "id", "data"]),
        (socketio.AsyncServer, "_trigger_event", ["event", "namespace", "args"]),
        (socketio.AsyncServer, "_send_packet", ["eio_sid", "pkt"]),
        (socketio.AsyncServer, "disconnect", ["sid", "namespace", "ignore_queue"]),
        (socketio.AsyncManager, "sid_from_eio_sid", ["eio_sid", "namespace"]),
        (socketio.AsyncManager, "eio_sid_from_sid", ["sid", "namespace"]),
        (socketio.AsyncManager, "is_connected", ["sid", "namespace"]),
        (socketio.AsyncManager, "get_namespaces", []),
        (socketio.AsyncManager, "get_participants", ["namespace", "room"]),
        (socketio.AsyncManager, "basic_enter_room", ["sid", "namespace", "room", "eio_sid"]),
        (socketio.AsyncManager, "basic_leave_room", ["sid", "namespace", "room"]),
        (socketio.AsyncManager, "basic_disconnect", ["sid", "namespace", "kwargs"]),
        (AsyncSocket, "receive", ["pkt"]),
        (AsyncSocket, "close", ["wait", "abort", "reason"]),
        (AsyncSocket, "_send_ping", []),
        (AsyncSocket, "_websocket_handler", ["ws"]),
        (engineio.AsyncServer, "start_background_task", ["target", "args", "kwargs"]),
        (engineio.AsyncServer, "create_queue", ["args", "kwargs"]),
    ],
)
def test_the_methods_the_adapter_calls_or_overrides_keep_their_signatures(
    owner: type, method: str, expected: list[str]
) -> None:
    assert parameters(getattr(owner, method)) == expected


def test_the_server_builds_its_engine_with_our_drivers_and_hooks() -> None:
    server = HubSocketServer(async_mode="aiohttp", client_manager=BroadcastManager())
    eio = server.eio
    assert type(eio) is LeanEngineServer  # _engineio_server_class is still how it is built
    assert eio._async["websocket"] is LeanWebSocket
    # engine.io still dispatches to python-socketio's three handlers, which we override.
    for event, handler in (
        ("connect", "_handle_eio_connect"),
        ("message", "_handle_eio_message"),
        ("disconnect", "_handle_eio_disconnect"),
    ):
        assert eio.handlers[event] == getattr(server, handler)
    assert eio.sockets == {} and eio.max_http_buffer_size > 0
    for reason in ("SERVER_DISCONNECT", "CLIENT_DISCONNECT", "TRANSPORT_CLOSE"):
        assert hasattr(server.reason, reason) and hasattr(eio.reason, reason)
    manager = server.manager
    for attribute in ("rooms", "callbacks", "pending_connect", "pending_disconnect"):
        assert isinstance(getattr(manager, attribute), dict), attribute
    assert server.packet_class is sio_packet.Packet


def test_a_socket_has_the_state_the_adapter_reads_and_sets() -> None:
    socket = AsyncSocket(LeanEngineServer(async_mode="aiohttp"), "sid1")
    assert isinstance(socket.queue, DirectQueue)  # made by create_queue
    state = {name: getattr(socket, name) for name in ("connected", "upgraded", "upgrading")}
    assert state == {"connected": False, "upgraded": False, "upgrading": False}
    assert (socket.closing, socket.closed, socket.sid) == (False, False, "sid1")
    assert isinstance(socket.last_ping, float)


def test_a_socket_s_state_follows_its_life() -> None:
    socket = AsyncSocket(LeanEngineServer(async_mode="aiohttp"), "sid1")
    states = [internals.state(socket)]  # a websocket connect, not attached yet
    socket.connected = True  # what engine.io's connect does for a long-polling client
    states.append(internals.state(socket))
    with internals.upgrading(socket):
        states.append(internals.state(socket))
    internals.mark_websocket(socket)
    states.append(internals.state(socket))
    socket.closing = True  # as `AsyncSocket.close` sets them
    states.append(internals.state(socket))
    assert internals.is_open(socket) is False
    socket.closed = True
    states.append(internals.state(socket))
    assert states == list(internals.EngineState)


def test_engine_io_uses_only_the_queue_methods_direct_queue_has() -> None:
    used = set()
    for module in (eio_async_socket, eio_async_server):
        used |= set(re.findall(r"\bqueue\.(\w+)\(", inspect.getsource(module)))
    assert used, "engine.io no longer uses its socket queue this way"
    assert used <= {name for name in dir(DirectQueue) if not name.startswith("_")}, used


class RecordingEngine(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(async_mode="aiohttp", **kwargs)
        self.started: list[Any] = []

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        self.started.append(target)


def test_each_pong_still_starts_send_ping_as_a_background_task() -> None:
    engine = RecordingEngine()
    socket = AsyncSocket(engine, "sid1")
    other_method = socket.receive
    socket.schedule_ping()  # what engine.io does at connect and on every PONG
    assert len(engine.started) == 1
    assert internals.pinged_socket(engine.started[0]) is socket
    assert internals.pinged_socket(other_method) is None


async def test_send_ping_does_what_the_task_does_after_its_sleep() -> None:
    theirs = AsyncSocket(RecordingEngine(ping_interval=0.001), "a")
    ours = AsyncSocket(RecordingEngine(), "b")
    for socket in (theirs, ours):
        socket.queue = asyncio.Queue()
        socket.last_ping = None
    before = time.time()
    await theirs._send_ping()
    internals.send_ping(ours)
    for socket in (theirs, ours):
        assert socket.last_ping >= before
        packet = socket.queue.get_nowait()
        assert packet.packet_type == eio_packet.PING and socket.queue.empty()
    ours.closing = True
    internals.send_ping(ours)
    assert ours.queue.empty()


async def test_check_ping_timeout_still_reads_last_ping() -> None:
    engine = RecordingEngine(ping_timeout=5)
    socket = AsyncSocket(engine, "sid1")
    socket.queue = asyncio.Queue()
    socket.last_ping = time.time() - 6  # a ping sent by send_ping and never answered
    assert await socket.check_ping_timeout() is False
    assert socket.closed


async def test_the_websocket_driver_is_called_with_the_socket_handler_and_awaited() -> None:
    engine = RecordingEngine()
    calls: list[tuple[str, Any]] = []

    class Driver:
        def __init__(self, handler: Any, server: Any) -> None:
            calls.append(("made", (internals.socket_of(handler), server)))

        async def __call__(self, environ: dict[str, Any]) -> str:
            calls.append(("awaited", environ))
            return "response"

    internals.replace_drivers(
        engine,
        websocket=Driver,
        translate_request=lambda original, request: original(request),
        make_response=lambda original, *args: original(*args),
    )
    socket = AsyncSocket(engine, "sid1")
    environ = {"QUERY_STRING": "EIO=4&transport=websocket"}
    assert await socket._upgrade_websocket(environ) == "response"
    assert calls == [("made", (socket, engine)), ("awaited", environ)]


async def test_receive_hands_packets_over_and_refuses_what_is_not_engine_io() -> None:
    engine = RecordingEngine(async_handlers=False)  # as python-socketio makes it
    messages: list[Any] = []

    async def on_message(sid: str, data: Any) -> None:
        messages.append((sid, data))

    engine.on("message", on_message)
    socket = AsyncSocket(engine, "sid1")
    socket.queue = asyncio.Queue()
    assert await internals.receive(socket, '42["hello"]')
    assert await internals.receive(socket, "6")  # NOOP from a client: UnknownPacketError
    assert messages == [("sid1", '2["hello"]')]  # a Socket.IO packet: not JSON to engine.io
    with pytest.raises(eio_exceptions.UnknownPacketError):
        await socket.receive(eio_packet.Packet(eio_packet.NOOP))
    with pytest.raises(IndexError):  # why `receive` checks the type before handing it over
        await socket.receive(eio_packet.Packet(9))
    for garbage in ("9", "", "x"):
        with pytest.raises(internals.NotEngineIO):
            await internals.receive(socket, garbage)
    assert not socket.closed
    assert await internals.receive(socket, "1") is False  # the client's CLOSE
    assert socket.closed


@pytest.mark.parametrize("message", ["", "x", "ba"])
def test_the_engine_io_decoder_still_raises_on_garbage(message: str) -> None:
    with pytest.raises(ValueError):
        eio_packet.Packet(encoded_packet=message)


def test_the_socket_io_decoder_reports_attachments_unbounded() -> None:
    # python-socketio bounds only the digits of the count; the hub bounds the count itself.
    packet = sio_packet.Packet(encoded_packet='5999999999-/chat,7["up",{"_placeholder":true}]')
    assert packet.packet_type == sio_packet.BINARY_EVENT and packet.attachment_count == 999999999
    assert (packet.namespace, packet.id) == ("/chat", 7)
    two = sio_packet.Packet(
        encoded_packet='52-["up",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]'
    )
    assert two.add_attachment(b"first") is False
    assert two.add_attachment(b"second") is True
    assert two.data == ["up", b"second", b"first"]


@pytest.mark.parametrize("encoded", ["x", '2["x"', "2/chat,1{", "2" + "1" * 120 + "[]"])
def test_the_socket_io_decoder_raises_value_error_on_garbage(encoded: str) -> None:
    with pytest.raises(ValueError):
        sio_packet.Packet(encoded_packet=encoded)


async def test_the_manager_answers_what_the_adapter_asks() -> None:
    server = HubSocketServer(async_mode="aiohttp", client_manager=BroadcastManager())
    manager = server.manager
    sid = await manager.pre_connect("eio1", "/chat")
    assert server.connected_sid("eio1", "/chat") is None  # still connecting
    assert not server.has_namespaces("eio1")
    await manager.connect(sid, "/chat")
    assert (
        server.connected_sid("eio1", "/chat") == sid and server.eio_sid_of(sid, "/chat") == "eio1"
    )
    assert server.has_namespaces("eio1") and internals.has_namespace(manager, "/chat")
    manager.callbacks[sid] = {1: print}
    manager.pre_disconnect(sid, "/chat")
    assert sid in manager.pending_disconnect["/chat"]
    await manager.disconnect(sid, "/chat")  # BroadcastManager.basic_disconnect -> forget_client
    assert sid not in manager.callbacks and "/chat" not in manager.pending_disconnect
    assert not server.has_namespaces("eio1") and not internals.has_namespace(manager, "/chat")


def test_an_event_packet_of_the_servers_serializer() -> None:
    server = HubSocketServer(async_mode="aiohttp", client_manager=BroadcastManager())
    packet = internals.event_packet(server, "/chat", ["message", {"a": 1}])
    assert packet.encode() == '2/chat,["message",{"a":1}]'


class Transport:
    """Where a socket's DirectQueue writes: the frames, decoded back to packets."""

    def __init__(self) -> None:
        self.packets: list[str] = []

    def is_closing(self) -> bool:
        return False

    def write(self, frames: bytes) -> None:
        while frames:  # unmasked server frames, each under 126 bytes here
            length = frames[1]
            self.packets.append(frames[2 : 2 + length].decode())
            frames = frames[2 + length :]

    def get_write_buffer_size(self) -> int:
        return 0


class EchoNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__("/echo")
        self.seen: list[tuple[str, Any]] = []

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        self.seen.append(("connect", auth))

    async def on_disconnect(self, sid: str, reason: Any) -> None:
        self.seen.append(("disconnect", reason))

    async def on_echo(self, sid: str, data: Any) -> Any:
        return {"echo": data}


async def test_python_socketio_handles_each_packet_kind_the_adapter_hands_it() -> None:
    server = HubSocketServer(async_mode="aiohttp", client_manager=BroadcastManager())
    namespace = EchoNamespace()
    server.register_namespace(namespace)
    socket = AsyncSocket(server.eio, "eio1")
    server.eio.sockets["eio1"] = socket
    transport = Transport()
    socket.queue.attach(transport, lambda: None)
    await server._handle_eio_connect("eio1", {})  # engine.io's "connect" handler

    await server.connect_namespace("eio1", "/echo", {"token": "t"})
    sid = server.connected_sid("eio1", "/echo")
    assert sid is not None and namespace.seen == [("connect", {"token": "t"})]
    assert transport.packets[-1] == f'40/echo,{{"sid":"{sid}"}}'

    await server.run_event(sid, "eio1", ["echo", 5], "/echo", 9)
    assert transport.packets[-1] == '43/echo,9[{"echo":5}]'
    await server.run_event(sid, "eio1", ["no such event", 5], "/echo", 11)
    assert transport.packets[-1] == "43/echo,11[]"  # a handler's None: an ACK with no argument
    await server.send_ack("eio1", "/echo", 10, {"ok": False})
    assert transport.packets[-1] == '43/echo,10[{"ok":false}]'

    await server.disconnect_namespace("eio1", "/echo")
    assert namespace.seen[-1] == ("disconnect", server.reason.CLIENT_DISCONNECT)
    assert server.connected_sid("eio1", "/echo") is None
    await server._handle_eio_disconnect("eio1", server.reason.CLIENT_DISCONNECT)
    assert not server._deadlines  # engine_closed ran: nothing left armed

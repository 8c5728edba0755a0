"""Every use the hub makes of engine.io's and python-socketio's internals, in one place.

The lean transport (`realtime.engine`, `realtime.websocket`), the bounded server
(`realtime.socket_server`) and the broadcast fast path (`realtime.fastpath`) reach below both
libraries' public APIs: to write frames without engine.io's writer task, to ping with a timer
instead of a sleeping task, and to bound what a client can make the hub hold, which
python-socketio's own packet dispatch does not. Each function here says what it relies on;
`tests/realtime/test_socketio_internals.py` checks that against the installed versions, which
pyproject pins below their next minor release. Nothing outside this package touches them.
"""

from realtime._socketio.engine import (
    EngineState,
    NotEngineIO,
    close_socket,
    end_session,
    engine_socket,
    is_open,
    mark_websocket,
    open_socket_finder,
    pinged_socket,
    queue_of,
    receive,
    replace_drivers,
    send_ping,
    socket_of,
    state,
    upgrading,
)
from realtime._socketio.server import SocketIOServer, event_packet, forget_client, has_namespace

__all__ = [
    "EngineState",
    "NotEngineIO",
    "SocketIOServer",
    "close_socket",
    "end_session",
    "engine_socket",
    "event_packet",
    "forget_client",
    "has_namespace",
    "is_open",
    "mark_websocket",
    "open_socket_finder",
    "pinged_socket",
    "queue_of",
    "receive",
    "replace_drivers",
    "send_ping",
    "socket_of",
    "state",
    "upgrading",
]

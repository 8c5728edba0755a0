"""A hub replica's graceful shutdown (SIGTERM), in the order a load balancer needs.

1. NOTICE: `/healthz` answers 503 `{"status": "draining"}` at once, and everything else goes
   on for `notice_s` seconds (HUB_DRAIN_NOTICE_S), for balancers that poll it.
2. REFUSING: a new connection, or a new Engine.IO session on a kept-alive one, is answered
   503 with the same body (nginx retries it on another replica); every new event is answered
   `unavailable`; the handlers already running finish and their acks are written. Requests
   of the sessions open here still get through (a long-polling client fetches its acks).
3. CLOSED: every Engine.IO transport is closed, as a dropped connection: no Engine.IO CLOSE
   and no Socket.IO DISCONNECT, either of which tells socket.io clients not to reconnect. They
   reconnect, through the balancer, to another replica and resume with `since_seq`.

All within DRAIN_BOUND_S of the signal: handlers still running at the deadline are cancelled.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from realtime import _socketio as internals
from realtime.frame_reader import GOING_AWAY

if TYPE_CHECKING:
    from realtime.socket_server import HubSocketServer

log = logging.getLogger(__name__)

DRAIN_BOUND_S = 10.0  # from the signal to the process's exit, at most
STOPPING_S = 2.0  # of which kept for stopping the services once the transports are closed
# How long a long-polling client has to fetch what waits for it (its acks) before its
# session is closed; a websocket's packets are written as they are sent.
POLL_FETCH_S = 1.0

DRAINING = {"status": "draining"}
DRAINING_BODY = json.dumps(DRAINING).encode()


class DrainPhase(enum.Enum):
    SERVING = enum.auto()
    NOTICE = enum.auto()
    REFUSING = enum.auto()
    CLOSED = enum.auto()


@dataclass(slots=True)
class Drain:
    """Where the replica's drain is; read by /healthz, the front door and event dispatch."""

    phase: DrainPhase = DrainPhase.SERVING

    @property
    def reported(self) -> bool:
        """/healthz says draining."""
        return self.phase is not DrainPhase.SERVING

    @property
    def refusing(self) -> bool:
        """New connections, sessions and events are refused."""
        return self.phase in (DrainPhase.REFUSING, DrainPhase.CLOSED)

    def refuses(self, path: str, socket_path: str, has_sid: bool) -> bool:
        """Whether a request is refused now: while refusing, all but those of Engine.IO
        sessions already open (path `socket_path`, with a `sid`)."""
        return self.refusing and not (has_sid and path == socket_path)


def draining_response() -> web.Response:
    return web.json_response(DRAINING, status=503)


async def drain(sio: HubSocketServer, *, notice_s: float, deadline: float) -> None:
    """Run the drain's phases on `sio` (see the module's docstring): every transport is closed
    by `deadline` (the event loop's clock)."""
    loop = asyncio.get_running_loop()

    def until(moment: float) -> float:
        return max(moment - loop.time(), 0.0)

    events_until = deadline - POLL_FETCH_S
    sio.drain.phase = DrainPhase.NOTICE
    log.info("draining: /healthz reports it; refusing new connections in %.1f s", notice_s)
    await asyncio.sleep(min(notice_s, until(events_until)))
    sio.drain.phase = DrainPhase.REFUSING
    cancelled = await sio.finish_events(until(events_until))
    if cancelled:
        log.warning("draining: cancelled %d event handlers running at the deadline", cancelled)
    sio.drain.phase = DrainPhase.CLOSED
    closed = await close_transports(sio, min(POLL_FETCH_S, until(deadline)))
    log.info("draining: closed %d connections; their clients reconnect elsewhere", closed)


async def close_transports(sio: HubSocketServer, fetch_within: float = 0) -> int:
    """Close every Engine.IO connection of `sio` as a dropped transport: websockets with a
    close frame (going away), long-polling sessions once their client fetched what waits for
    them, within `fetch_within` seconds. How many were open."""
    sio.manager.flush()  # broadcasts held by a write delay
    sockets = sio.open_sockets()
    queues = [internals.queue_of(socket) for socket in sockets]
    unfetched = [asyncio.ensure_future(queue.join()) for queue in queues if not queue.empty()]
    if unfetched:
        _, late = await asyncio.wait(unfetched, timeout=fetch_within)
        for fetch in late:
            fetch.cancel()
    for connection in list(sio.websockets):
        connection.close(GOING_AWAY, "server shutting down")
    for queue in queues:
        queue.put_nowait(None)  # closes a websocket served by aiohttp; answers an open poll
    # Their disconnect handlers run now, while the services they use are up.
    await asyncio.gather(*map(internals.close_socket, sockets), return_exceptions=True)
    return len(sockets)

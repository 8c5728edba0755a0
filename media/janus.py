"""The hub's side of Janus's VideoRoom plugin, over Janus's WebSocket API (`JANUS_URL`).

Participants never talk to Janus: the hub holds one Janus session (kept alive every
KEEPALIVE_S), one plugin handle per participant's connection, and relays their JSEP offers and
answers. A consult's room is created with a secret (needed to destroy it or change who may
join) and the tokens of the participants the hub admitted: Janus refuses anyone else.

- :class:`JanusSession`: the session; `attach` gives a :class:`JanusHandle`. When the session
  is lost (the socket closes, Janus says it timed out, a keepalive fails), `lost` is set and
  every pending request fails with :class:`JanusLost`: the hub must recreate its rooms and the
  participants renegotiate.
- media.janus_room.JanusRoom: create/destroy a consult's room, allow a participant's token.
- A publisher handle `publish`es an offer and returns Janus's answer; a subscriber handle
  `subscribe`s to feeds and returns Janus's offer, then `start`s with the participant's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiohttp

log = logging.getLogger(__name__)

PLUGIN = "janus.plugin.videoroom"
KEEPALIVE_S = 15.0  # under deploy/janus's session_timeout of 60 s
REQUEST_TIMEOUT_S = 10.0
ENDED = ("lost", "detached")  # the kinds of a handle's last event

Jsep = dict[str, str]  # {"type": "offer" | "answer", "sdp": ...}


@dataclass(frozen=True)
class JanusAccess:
    """Where Janus's WebSocket API is, and the secrets it asks for when configured with them
    (`api_secret` in janus.jcfg, the VideoRoom's `admin_key`)."""

    url: str
    api_secret: str | None = None
    admin_key: str | None = None


class JanusError(Exception):
    """Janus or its VideoRoom plugin refused a request, with its error code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code


class JanusLost(ConnectionError):
    """The Janus session is gone (Janus restarted, the socket dropped, a keepalive failed)."""


class _Pending(NamedTuple):
    reply: asyncio.Future[dict[str, Any]]
    ack: bool  # an `ack` answers it


class JanusSession:
    """One Janus session over one WebSocket."""

    def __init__(
        self, socket: aiohttp.ClientWebSocketResponse, api_secret: str | None = None
    ) -> None:
        self._socket = socket
        self._api_secret = api_secret  # Janus's `api_secret`, sent with every request
        self._session_id = 0
        self._transactions = (f"t{n}" for n in itertools.count())
        self._pending: dict[str, _Pending] = {}
        self._handles: dict[int, JanusHandle] = {}
        self.lost = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())
        self._keepalive: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, http: aiohttp.ClientSession, url: str, api_secret: str | None = None
    ) -> JanusSession:
        socket = await http.ws_connect(url, protocols=("janus-protocol",), heartbeat=KEEPALIVE_S)
        session = cls(socket, api_secret)
        try:
            created = await session._send({"janus": "create"})
        except BaseException:
            await session.close()
            raise
        session._session_id = created["data"]["id"]
        session._keepalive = asyncio.ensure_future(session._keep_alive())
        return session

    async def attach(self) -> JanusHandle:
        attached = await self._send({"janus": "attach", "plugin": PLUGIN})
        handle = JanusHandle(self, attached["data"]["id"])
        self._handles[handle.id] = handle
        return handle

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._session_id and not self.lost.is_set():
            with contextlib.suppress(JanusError, JanusLost, TimeoutError):
                await self._send({"janus": "destroy"})
        self._reader.cancel()
        await self._socket.close()
        self._lose()

    async def _send(self, message: dict[str, Any], *, ack: bool = False) -> dict[str, Any]:
        """Send a request and return Janus's reply to it: `success` or a plugin `event` (the
        `ack` before an event is skipped), or the `ack` itself with `ack` (keepalives)."""
        if self.lost.is_set():
            raise JanusLost("the Janus session is gone")
        transaction = next(self._transactions)
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = _Pending(reply, ack)
        if self._session_id:
            message["session_id"] = self._session_id
        if self._api_secret:
            message["apisecret"] = self._api_secret
        try:
            await self._socket.send_json({**message, "transaction": transaction})
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                return await reply
        except ConnectionError as error:
            raise JanusLost(str(error)) from error
        finally:
            self._pending.pop(transaction, None)

    async def _read(self) -> None:
        try:
            async for message in self._socket:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(message.json())
        finally:
            self._lose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        if kind == "timeout":
            log.warning("janus session %s timed out", self._session_id)
            self._lose()
            return
        pending = self._pending.get(message.get("transaction", ""))
        if pending is not None and (kind != "ack" or pending.ack) and not pending.reply.done():
            if kind == "error" or "error" in message.get("plugindata", {}).get("data", {}):
                pending.reply.set_exception(_error(message))
            else:
                pending.reply.set_result(message)
            return
        handle = self._handles.get(message.get("sender", 0))
        if handle is not None and kind != "ack":
            handle.events.put_nowait(message)

    def _lose(self) -> None:
        if self.lost.is_set():
            return
        self.lost.set()
        for pending in self._pending.values():
            if not pending.reply.done():
                pending.reply.set_exception(JanusLost("the Janus session is gone"))
        for handle in self._handles.values():
            handle.events.put_nowait({"janus": "lost"})

    async def _keep_alive(self) -> None:
        while not self.lost.is_set():
            await asyncio.sleep(KEEPALIVE_S)
            try:
                await self._send({"janus": "keepalive"}, ack=True)
            except (JanusLost, TimeoutError):
                log.warning("janus session %s: keepalive failed", self._session_id)
                self._lose()


class JanusHandle:
    """A VideoRoom plugin handle: one participant's publishing or subscribing connection.
    `events` gets what Janus says on it unasked (`webrtcup`, `hangup`, new `publishers`, a
    renegotiation offer); the last is `{"janus": "lost"}` when the session is gone, or
    `{"janus": "detached"}` once the hub detached it (ENDED)."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self._session = session
        self.id = handle_id
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def request(self, body: dict[str, Any], jsep: Jsep | None = None) -> dict[str, Any]:
        """Send a plugin request; return the plugin's data and, under "jsep", Janus's JSEP."""
        message: dict[str, Any] = {"janus": "message", "handle_id": self.id, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        reply = await self._session._send(message)
        data: dict[str, Any] = dict(reply.get("plugindata", {}).get("data", {}))
        if "jsep" in reply:
            data["jsep"] = {"type": reply["jsep"]["type"], "sdp": reply["jsep"]["sdp"]}
        return data

    async def join_as_publisher(
        self, room: str, token: str, display: str, feed: str | None = None
    ) -> str:
        """Join the room to publish, as `feed` if given; return this participant's feed id
        (subscribe to it once Janus says `webrtcup` on this handle)."""
        body = {"request": "join", "ptype": "publisher", "room": room, "token": token,
                "display": display}  # fmt: skip
        joined = await self.request(body if feed is None else {**body, "id": feed})
        joined_as: str = joined["id"]
        return joined_as

    async def publish(self, offer: Jsep) -> Jsep:
        """Publish the participant's offer; return Janus's answer."""
        published = await self.request({"request": "publish"}, offer)
        answer: Jsep = published["jsep"]
        return answer

    async def subscribe(self, room: str, token: str, feeds: list[str]) -> Jsep:
        """Subscribe to `feeds`; return Janus's offer (answer it with `start`). Each stream
        in it is named (msid) after its feed."""
        joined = await self.request(
            {"request": "join", "ptype": "subscriber", "room": room, "token": token,
             "use_msid": True, "streams": [{"feed": feed} for feed in feeds]}
        )  # fmt: skip
        offer: Jsep = joined["jsep"]
        return offer

    async def start(self, answer: Jsep) -> None:
        await self.request({"request": "start"}, answer)

    async def update(self, feeds: list[str]) -> Jsep | None:
        """Add `feeds` to this subscription; return Janus's new offer, or None when it comes
        later as an event (Janus holds it until the previous offer is answered)."""
        updated = await self.request(
            {"request": "update", "subscribe": [{"feed": f} for f in feeds]}
        )
        offer: Jsep | None = updated.get("jsep")
        return offer

    async def configure(self, offer: Jsep) -> Jsep:
        """Renegotiate a publisher's connection (a track added or removed); return the answer."""
        configured = await self.request({"request": "configure"}, offer)
        answer: Jsep = configured["jsep"]
        return answer

    async def trickle(self, candidate: dict[str, Any]) -> None:
        """Hand Janus a candidate of the participant's (`{"completed": True}` ends them)."""
        message = {"janus": "trickle", "handle_id": self.id, "candidate": candidate}
        await self._session._send(message, ack=True)

    async def detach(self) -> None:
        self._session._handles.pop(self.id, None)
        self.events.put_nowait({"janus": "detached"})
        with contextlib.suppress(JanusError, JanusLost, TimeoutError):
            await self._session._send({"janus": "detach", "handle_id": self.id})


def _error(message: dict[str, Any]) -> JanusError:
    if "error" in message:
        error = message["error"]
        return JanusError(int(error.get("code", 0)), str(error.get("reason")))
    data = message["plugindata"]["data"]
    return JanusError(int(data.get("error_code", 0)), str(data.get("error")))

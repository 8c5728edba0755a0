"""One consult's Janus VideoRoom and its members' connections to it (signaling.janus_host
hosts it and holds its lock: every method here runs under it).

Each member has a token the room allows, a publisher handle for its `publish` connection and a
subscriber handle for its `subscribe` connection. A feed is named after its member, so the
streams others receive carry the member's user id (msid), as the page's tiles expect. Once a
feed's media is up, every other member subscribes to it; Janus renegotiates subscriptions by
itself when a feed leaves, and its offers go to the member as they come.

Bounds, as the embedded SFU's: a publish offer sends at most MAX_PUBLISHED_TRACKS tracks, and a
connection takes at most MAX_EARLY_CANDIDATES trickled candidates (Janus keeps them all).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiortc import RTCSessionDescription

from domain.errors import Conflict, Invalid
from media.janus import ENDED, JanusHandle, JanusSession, Jsep
from media.janus_room import JanusRoom
from media.sdp_rules import IceCandidateInit, new_connection
from media.sfu import MAX_EARLY_CANDIDATES, TooManyCandidates
from signaling.media_host import Deliver, Pc, from_media_server
from signaling.sdp import sending_media
from signaling.sfu_host import MAX_PUBLISHED_TRACKS, TooManyTracks

log = logging.getLogger(__name__)

Spawn = Callable[[Awaitable[None]], None]


@dataclass
class _Member:
    token: str
    publisher: JanusHandle | None = None
    offer: RTCSessionDescription | None = None  # the publish connection's last offer
    feed: str | None = None
    subscriber: JanusHandle | None = None
    feeds: set[str] = field(default_factory=set)  # subscribed to
    session: str | None = None  # the client's name for its publish connection
    candidates: Counter[Pc] = field(default_factory=Counter)  # trickled on each connection


class JanusConsult:
    def __init__(
        self,
        consult: UUID,
        session: JanusSession,
        room: JanusRoom,
        lock: asyncio.Lock,
        deliver: Deliver,
        spawn: Spawn,
    ) -> None:
        self.consult = consult
        self.session = session
        self.room = room
        self._lock = lock
        self._deliver = deliver
        self._spawn = spawn
        self._members: dict[UUID, _Member] = {}
        self._live: dict[str, UUID] = {}  # feeds whose media is up -> their member
        self.closed = False

    async def signal(
        self,
        user: UUID,
        description: RTCSessionDescription | None,
        candidate: IceCandidateInit | None,
        pc: Pc,
        session: str | None,
    ) -> None:
        member = self._members.get(user) or await self._enter(user)
        if description is not None and pc == "publish":
            if description.type != "offer":
                raise Invalid("the publish connection is offered by its member")
            await self._publish(user, member, description, session)
        elif session is not None and session != member.session:
            raise Conflict("this signal is for a connection the member replaced")
        elif description is not None:
            if description.type != "answer" or member.subscriber is None:
                raise Conflict("the subscribe connection answers the media server's offer")
            await member.subscriber.start(_jsep(description))
        if candidate is not None:
            handle = member.publisher if pc == "publish" else member.subscriber
            if handle is None:
                raise KeyError(pc)
            if member.candidates[pc] >= MAX_EARLY_CANDIDATES:
                raise TooManyCandidates(f"at most {MAX_EARLY_CANDIDATES} candidates a connection")
            member.candidates[pc] += 1
            await handle.trickle(_janus_candidate(candidate))

    async def remove(self, user: UUID) -> bool:
        """Take a member out; whether the room is empty now."""
        member = self._members.pop(user, None)
        if member is not None:
            await self._unpublish(member)
            if member.subscriber is not None:
                await member.subscriber.detach()
        return not self._members

    async def detach_all(self) -> None:
        """Detach every member's handles (their followers end); Janus keeps the room."""
        for member in self._members.values():
            for handle in (member.publisher, member.subscriber):
                if handle is not None:
                    await handle.detach()

    async def _enter(self, user: UUID) -> _Member:
        member = _Member(JanusRoom.new_token())
        await self.room.allow(member.token)
        self._members[user] = member
        return member

    async def _publish(
        self, user: UUID, member: _Member, offer: RTCSessionDescription, session: str | None
    ) -> None:
        if len(sending_media(offer.sdp)) > MAX_PUBLISHED_TRACKS:
            raise TooManyTracks(f"a member publishes at most {MAX_PUBLISHED_TRACKS} tracks")
        renegotiation = member.publisher is not None and member.offer is not None
        if renegotiation and session == member.session and not new_connection(member.offer, offer):
            assert member.publisher is not None
            answer = await member.publisher.configure(_jsep(offer))
        else:  # a new publish connection: the member's subscribe connection is new too
            await self._unpublish(member)
            member.candidates.clear()
            if member.subscriber is not None:
                await member.subscriber.detach()
                member.subscriber, member.feeds = None, set()
            member.session, member.offer = session, None
            handle = await self.session.attach()
            try:
                feed = await handle.join_as_publisher(
                    self.room.id, member.token, str(user), feed=str(user)
                )
                answer = await handle.publish(_jsep(offer))
            except BaseException:
                await handle.detach()
                raise
            member.publisher, member.feed = handle, feed
            self._spawn(self._follow_publisher(user, handle))
        member.offer = offer
        await self._send(user, answer, "publish", member.session)
        await self._subscribe(user, member, [f for f, by in self._live.items() if by != user])

    async def _unpublish(self, member: _Member) -> None:
        """Drop a member's publisher handle: Janus renegotiates the others' subscriptions."""
        if member.publisher is None or member.feed is None:
            return
        await member.publisher.detach()
        self._live.pop(member.feed, None)
        for other in self._members.values():
            other.feeds.discard(member.feed)
        member.publisher = member.feed = None

    async def _subscribe(self, user: UUID, member: _Member, feeds: list[str]) -> None:
        """Add `feeds` to the member's subscription, opening it with the first; Janus's offer
        goes to the member now, or later through _follow_subscriber."""
        feeds = [feed for feed in feeds if feed not in member.feeds]
        if not feeds:
            return
        if member.subscriber is None:
            handle = await self.session.attach()
            try:
                offer: Jsep | None = await handle.subscribe(self.room.id, member.token, feeds)
            except BaseException:
                await handle.detach()
                raise
            member.subscriber = handle
            self._spawn(self._follow_subscriber(user, handle, member.session))
        else:
            offer = await member.subscriber.update(feeds)
        member.feeds.update(feeds)
        if offer is not None:
            await self._send(user, offer, "subscribe", member.session)

    async def _follow_publisher(self, user: UUID, handle: JanusHandle) -> None:
        """Once a feed's media is up, everyone else in the room subscribes to it (one whose
        subscription Janus refuses is logged and left out; the others still subscribe)."""
        while (event := await handle.events.get())["janus"] not in ("webrtcup", *ENDED):
            pass
        if event["janus"] in ENDED:
            return
        async with self._lock:
            member = self._members.get(user)
            if self.closed or member is None or member.publisher is not handle:
                return  # gone, or replaced by a newer connection, meanwhile
            feed = str(user)
            self._live[feed] = user
            for other_user, other in list(self._members.items()):
                if other_user != user and other.offer is not None:
                    try:
                        await self._subscribe(other_user, other, [feed])
                    except Exception as error:
                        log.warning("%s not subscribed to %s: %r", other_user, feed, error)

    async def _follow_subscriber(
        self, user: UUID, handle: JanusHandle, session: str | None
    ) -> None:
        """Janus's own offers on a subscription (a feed left, a postponed update)."""
        while (event := await handle.events.get())["janus"] not in ENDED:
            if "jsep" in event and event["jsep"].get("type") == "offer":
                offer = {"type": "offer", "sdp": event["jsep"]["sdp"]}
                try:
                    await self._send(user, offer, "subscribe", session)
                except Exception as error:  # Redis out: the member's next publish starts over
                    log.warning("Janus's offer to %s not delivered: %r", user, error)

    async def _send(self, user: UUID, jsep: Jsep, pc: Pc, session: str | None) -> None:
        description = RTCSessionDescription(jsep["sdp"], jsep["type"])
        await self._deliver(
            self.consult, user, "signal", from_media_server(self.consult, description, pc, session)
        )


def _jsep(description: RTCSessionDescription) -> Jsep:
    return {"type": description.type, "sdp": description.sdp}


def _janus_candidate(candidate: IceCandidateInit) -> dict[str, Any]:
    if not candidate["candidate"]:
        return {"completed": True}
    return {key: value for key, value in candidate.items() if value is not None}

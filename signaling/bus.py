"""Routing between hub replicas for `/rtc`: each replica listens on a Redis channel of its own,
`<prefix>:rtc:replica:<replica id>`, and a call member's record names the replica serving them.

`emit` delivers an event to a member's connection, directly when it is on this replica and
through that replica's channel otherwise; `send` carries a command (the SFU's work, which is
pinned to one replica) to a replica. Publications from one caller arrive in the order it
awaited them. A publication to a replica that is gone is lost: its members reconnect, rejoin
within the grace, and renegotiate; those who do not are dropped once its lease expires
(signaling.leases), and its SFU rooms are released then.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from domain.redis_client import RedisClient
from realtime.bus import Subscription
from signaling.calls import Member
from signaling.commands import SfuCommand, decode

log = logging.getLogger(__name__)

EmitLocal = Callable[[str, str, dict[str, Any]], Awaitable[None]]  # sid, event, data
RunCommand = Callable[[SfuCommand], Awaitable[None]]


class ReplicaBus:
    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        replica_id: str,
        emit_local: EmitLocal,
        run_command: RunCommand,
    ) -> None:
        self.replica_id = replica_id
        self._redis = redis
        self._prefix = prefix
        self._emit_local = emit_local
        self._run_command = run_command
        self._subscription = Subscription(redis, self._channel(replica_id), self._receive)

    def _channel(self, replica_id: str) -> str:
        return f"{self._prefix}:rtc:replica:{replica_id}"

    async def start(self) -> None:
        await self._subscription.start()

    async def stop(self) -> None:
        await self._subscription.stop()

    async def emit(self, member: Member, event: str, data: dict[str, Any]) -> None:
        """Deliver `event` to the member's connection, on whichever replica serves it."""
        if member.replica == self.replica_id:
            await self._emit_local(member.sid, event, data)
        else:
            await self._publish(member.replica, {"sid": member.sid, "event": event, "data": data})

    async def send(self, replica_id: str, command: SfuCommand) -> None:
        """Run `command` on the replica `replica_id` (here, if it is this one)."""
        if replica_id == self.replica_id:
            await self._run_command(command)
        else:
            await self._publish(replica_id, {"command": command.encode()})

    async def _publish(self, replica_id: str, publication: dict[str, Any]) -> None:
        await self._redis.publish(self._channel(replica_id), json.dumps(publication))

    async def _receive(self, raw: bytes) -> None:
        publication = json.loads(raw)
        if "command" in publication:
            await self._run_command(decode(publication["command"]))
        else:
            await self._emit_local(publication["sid"], publication["event"], publication["data"])

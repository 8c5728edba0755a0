"""The rooms each connection is in on this replica (joined, or watched), bounded per
connection: a client cannot make the replica host rooms without end."""

from __future__ import annotations

from uuid import UUID

from realtime.protocol import ErrorCode, EventError


class SocketRooms:
    __slots__ = ("_rooms",)

    def __init__(self) -> None:
        self._rooms: dict[str, set[UUID]] = {}  # sid -> its rooms here

    def check_bound(self, sid: str, room: UUID, bound: int) -> None:
        """Refuse a room past the connection's `bound` (`too_large`)."""
        rooms = self._rooms.get(sid, set())
        if room not in rooms and len(rooms) >= bound:
            raise EventError(
                ErrorCode.too_large, f"at most {bound} rooms per connection; leave one"
            )

    def add(self, sid: str, room: UUID) -> None:
        self._rooms.setdefault(sid, set()).add(room)

    def discard(self, sid: str, room: UUID) -> None:
        rooms = self._rooms.get(sid)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms[sid]

    def has(self, sid: str, room: UUID) -> bool:
        return room in self._rooms.get(sid, ())

    def of(self, sid: str) -> list[UUID]:
        return list(self._rooms.get(sid, ()))

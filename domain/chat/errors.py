"""What the chat rules refuse, each under its kind in `domain.errors` and with the message the
caller reads (the hub's acks and REST's problems show it as it is)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from domain.errors import Forbidden, Invalid, NotFound


class RoomNotFound(NotFound):
    """No such room (a conversation's id is its room)."""

    def __init__(self) -> None:
        super().__init__("no such room")


class NotAMember(Forbidden):
    """The caller is not a member of the room (never was, left, or was banned)."""

    def __init__(self) -> None:
        super().__init__("you are not a member of this room")


class Muted(Forbidden):
    """A moderator muted the sender in this room until `until`."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"a moderator muted you here until {until.isoformat()}")
        self.until = until


class MessageNotFound(NotFound):
    """No such message in this room (or it was deleted, for what needs its body)."""

    def __init__(self, message: str = "no such message") -> None:
        super().__init__(message)


class NotYourMessage(Forbidden):
    """Only the sender (or, for some actions, a moderator) may do this to a message."""


class TooManyEdits(Invalid):
    """The message was edited as many times as one message may be."""

    def __init__(self, max_edits: int) -> None:
        super().__init__(f"a message is edited at most {max_edits} times")


class FlagNotFound(NotFound):
    """No such flag."""

    def __init__(self) -> None:
        super().__init__("no such flag")


class UnknownUsers(Invalid):
    """Some of the requested members do not exist."""

    def __init__(self, user_ids: Iterable[UUID]) -> None:
        self.user_ids = sorted(user_ids)
        super().__init__("unknown users: " + ", ".join(map(str, self.user_ids)))

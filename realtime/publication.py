"""What one replica's fan-out tells the others about a room, as it travels over Redis.

On the wire a publication is `<replica>|<room>|<json>`: a receiver skips its own and rooms it
does not host without parsing the JSON. The JSON names its kind (`k`), so a receiver never
guesses it from which keys are present.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID


class Kind(enum.Enum):
    message = "m"  # a stored message, delivered in seq order
    event = "e"  # an event without a seq (edits, deletions, typing, receipts, presence)
    removal = "r"  # a user's connections are taken out of the room


@dataclass(frozen=True, slots=True)
class Publication:
    room: UUID
    kind: Kind
    event: str
    data: dict[str, Any]
    seq: int = 0  # a message's
    user: UUID | None = None  # a removal's

    def encode(self, origin: str) -> str:
        """The wire form, sent by replica `origin`."""
        body: dict[str, Any] = {"k": self.kind.value, "e": self.event, "d": self.data}
        if self.kind is Kind.message:
            body["s"] = self.seq
        elif self.kind is Kind.removal:
            body["u"] = str(self.user)
        return f"{origin}|{self.room}|{json.dumps(body, separators=(',', ':'))}"

    @classmethod
    def decode(cls, room: UUID, body: bytes) -> Publication:
        """The publication whose JSON is `body` (see `header`), about `room`."""
        fields = json.loads(body)
        kind = Kind(fields["k"])
        return cls(
            room,
            kind,
            fields["e"],
            fields["d"],
            seq=fields["s"] if kind is Kind.message else 0,
            user=UUID(fields["u"]) if kind is Kind.removal else None,
        )


def header(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """A publication's origin replica, room id and JSON body, none of them parsed."""
    origin, room, body = raw.split(b"|", 2)
    return origin, room, body

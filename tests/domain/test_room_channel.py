"""What one replica's fan-out tells the others (`domain.chat.room_channel`), without servers."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.chat.room_channel import Kind, Publication, header


@pytest.mark.parametrize(
    "publication",
    [
        Publication(uuid4(), Kind.message, "message", {"seq": 7, "body": "a|b"}, seq=7),
        Publication(uuid4(), Kind.event, "typing", {"user": "u", "typing": True}),
        Publication(uuid4(), Kind.removal, "removed", {"reason": "banned"}, user=uuid4()),
    ],
    ids=lambda publication: publication.kind.name,
)
def test_a_publication_survives_the_wire(publication: Publication) -> None:
    origin, room, body = header(publication.encode("replica-1").encode())
    assert origin == b"replica-1"
    assert room == str(publication.room).encode()
    assert Publication.decode(publication.room, body) == publication


def test_the_kind_travels_explicitly_not_guessed_from_keys() -> None:
    """An event whose data happens to carry a seq or a user is still an event."""
    room = uuid4()
    event = Publication(room, Kind.event, "message_edited", {"s": 3, "u": "x", "seq": 3})
    decoded = Publication.decode(room, header(event.encode("r").encode())[2])
    assert decoded.kind is Kind.event
    assert decoded.seq == 0 and decoded.user is None


def test_a_publication_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        Publication.decode(uuid4(), b'{"k":"x","e":"message","d":{}}')

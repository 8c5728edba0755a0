"""The SFU commands' encoding for the Redis hop between replicas: each decodes to itself."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from aiortc import RTCSessionDescription

from signaling.commands import SfuCommand, SfuRemove, SfuSignal, decode
from tests.signaling.rtc_client import MINIMAL_SDP


@pytest.mark.parametrize(
    "command",
    [
        SfuSignal(uuid4(), uuid4(), RTCSessionDescription(MINIMAL_SDP, "offer"), None),
        SfuSignal(uuid4(), uuid4(), None, {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}),
        SfuSignal(
            uuid4(), uuid4(), RTCSessionDescription(MINIMAL_SDP, "offer"), None, "publish", "s1"
        ),
        SfuRemove(uuid4(), uuid4()),
    ],
)
def test_a_command_survives_the_hop(command: SfuCommand) -> None:
    assert decode(json.loads(json.dumps(command.encode()))) == command


def test_an_unknown_command_is_refused() -> None:
    encoded = {**SfuRemove(uuid4(), uuid4()).encode(), "op": "sfu_restart"}
    with pytest.raises(ValueError, match="sfu_restart"):
        decode(encoded)

"""The embedded SFU as it was before it forwarded (issue 16), kept for the benchmarks'
before/after comparison: the room decodes each published track once (aiortc's MediaRelay)
and encodes it again for every subscriber."""

from __future__ import annotations

import asyncio
import contextlib

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from media.sfu import SfuRoom, Source


class _RelaySource:
    def __init__(self, relay: MediaRelay, track: MediaStreamTrack) -> None:
        self._relay = relay
        self._track = track
        self._drain = asyncio.ensure_future(self._read_always())

    def subscribe(self) -> MediaStreamTrack:
        subscription: MediaStreamTrack = self._relay.subscribe(self._track, buffered=False)
        return subscription

    def watch_sender(self, sender: RTCRtpSender) -> None:
        """Nothing to do: a sender that encodes answers PLIs with a keyframe itself."""

    def request_keyframe(self) -> None:
        """Nothing to do: each subscriber's encoder starts with a keyframe."""

    def close(self) -> None:
        self._drain.cancel()

    async def _read_always(self) -> None:
        """Read the track even with no subscriber, so its frames never pile up."""
        track = self.subscribe()
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()


class RelaySfuRoom(SfuRoom):
    """An SfuRoom that decodes and re-encodes, as the hub's did before issue 16."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._relay = MediaRelay()

    def _publish(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> Source:
        return _RelaySource(self._relay, track)

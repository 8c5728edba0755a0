"""One take of a recording of a consult Janus serves, on the replica hosting its room.

Janus records, not the hub: while the take records, the consult's VideoRoom has recording
enabled (media.janus.JanusRoom.record) into the take's directory, and Janus writes each
publisher's audio and video as `.mjr` files there (packets as they came, no transcoding). A
pause turns it off; resuming starts new files. Each stretch between a start or resume and the
next pause or stop is one segment per participant (the feed in a file's name is the member's
user id). On stop, each file becomes WebM or Ogg Opus through janus-pp-rec (Debian's
janus-tools), a participant's audio and video of a stretch are muxed into one WebM segment on
the recording's timeline (pauses left out, as recordings.room's are), and the segments go to S3
with the join and manifest every recording gets (recordings.uploads).

Janus must write where the hub reads: the same host, or a volume both mount at the same path.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any
from uuid import UUID

import av

from media.janus_room import JanusRoom
from media.recorder import Segment
from recordings.room import SEGMENTS_PER_TAKE
from recordings.uploads import RecordingUploads

log = logging.getLogger(__name__)

# videoroom-<room>-user-<feed>-<microseconds>-<audio|video>-<mindex>.mjr (janus_videoroom.c)
MJR_NAME = re.compile(
    r"^videoroom-.+-user-(?P<feed>[0-9a-f-]{36})-(?P<us>\d+)-(?P<kind>audio|video)-\d+\.mjr$"
)
GROUP_S = 2.0  # a publisher's audio and video recorders open within this of each other
CONVERTED = {"video": ".webm", "audio": ".opus"}
PP_REC_TIMEOUT_S = 600.0


class JanusTake:
    def __init__(
        self,
        room: JanusRoom,
        recording_id: UUID,
        take: int,
        directory: Path,
        uploads: RecordingUploads,
    ) -> None:
        self.recording_id = recording_id
        self.take = take
        self._room = room
        self._directory = directory
        self._uploads = uploads
        self._stretches: list[set[Path]] = []  # the .mjr files of each stretch, in order
        self._recording = False

    async def start(self) -> None:
        await self._room.record(True, self._directory)
        self._recording = True

    async def pause(self) -> None:
        await self.halt()

    async def resume(self) -> None:
        if not self._recording:
            await self.start()

    async def halt(self) -> None:
        """Have Janus stop writing (unless it already has: the room or Janus went away, which
        closes its files too); the stretch so far is kept."""
        if not self._recording:
            return
        try:
            await self._room.record(False, self._directory)
        except Exception as error:
            log.warning("recording %s: Janus's recording not stopped: %r", self.recording_id, error)
        self._recording = False
        self._end_stretch()

    async def stop(self) -> None:
        """Halt; convert and mux what Janus wrote, and upload it with the manifest. A file that
        cannot be converted is logged and left out; the rest still reaches S3."""
        await self.halt()
        await finish_take(
            self.recording_id, self.take, self._directory, self._stretches, self._uploads
        )

    def _end_stretch(self) -> None:
        seen = set().union(*self._stretches) if self._stretches else set()
        self._stretches.append(set(self._directory.glob("*.mjr")) - seen)


async def finish_take(
    recording_id: UUID,
    take: int,
    directory: Path,
    stretches: list[set[Path]],
    uploads: RecordingUploads,
) -> None:
    """Convert and mux the .mjr files Janus wrote into `directory`, stretch by stretch (a
    stretch's files grouped by the publisher connection that wrote them), upload each segment,
    then join and index the take. A file that cannot be converted is logged and left out."""
    segments: dict[UUID, list[Segment]] = defaultdict(list)
    start_s: dict[UUID, float] = defaultdict(float)
    for stretch, files in enumerate(stretches):
        for user_id, groups in _by_publisher(files).items():
            for group in groups:  # a member who reconnected mid-stretch published anew
                seq = take * SEGMENTS_PER_TAKE + len(segments[user_id])
                path = directory / f"{user_id}-{seq}.webm"
                try:
                    segment = await _segment(seq, path, group, start_s[user_id])
                except Exception:
                    log.exception(
                        "recording %s: stretch %d of %s lost", recording_id, stretch, user_id
                    )
                    continue
                if segment is not None:
                    start_s[user_id] += segment.duration_s
                    await uploads.upload_segment(recording_id, user_id, segment)
                    segments[user_id].append(segment)
    await uploads.finish(recording_id, take, dict(segments))


async def _segment(seq: int, path: Path, kinds: dict[str, Path], start_s: float) -> Segment | None:
    converted: dict[str, Path] = {}
    for kind, mjr in kinds.items():
        target = mjr.with_suffix(CONVERTED[kind])
        if await _pp_rec(mjr, target):
            converted[kind] = target
    if not converted:
        return None
    duration_s = await asyncio.to_thread(mux_stretch, converted, path, start_s)
    content = await asyncio.to_thread(path.read_bytes)
    return Segment(
        seq=seq,
        path=path,
        start_s=start_s,
        duration_s=duration_s,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )


def _by_publisher(files: set[Path]) -> dict[UUID, list[dict[str, Path]]]:
    """Each member's files of a stretch, grouped by the publisher connection that wrote them:
    a group's audio and video were opened together (within GROUP_S)."""
    found: dict[UUID, list[tuple[int, dict[str, Path]]]] = defaultdict(list)
    for path in sorted(files, key=lambda path: path.name):
        name = MJR_NAME.match(path.name)
        if name is None:
            continue
        user, kind, opened_us = UUID(name["feed"]), name["kind"], int(name["us"])
        groups = found[user]
        if groups and kind not in groups[-1][1] and opened_us - groups[-1][0] <= GROUP_S * 1e6:
            groups[-1][1][kind] = path
        else:
            groups.append((opened_us, {kind: path}))
    return {
        user: [group for _, group in sorted(groups, key=lambda g: g[0])]
        for user, groups in found.items()
    }


async def _pp_rec(source: Path, target: Path) -> bool:
    """Convert one .mjr file; False if janus-pp-rec could not (no packets, say)."""
    process = await asyncio.create_subprocess_exec(
        "janus-pp-rec", "--disable-colors", "--debug-level", "3", str(source), str(target),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(PP_REC_TIMEOUT_S):
            _, errors = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        log.warning("janus-pp-rec %s: no result in %.0f s", source.name, PP_REC_TIMEOUT_S)
        return False
    if process.returncode != 0 or not await asyncio.to_thread(target.exists):
        log.warning("janus-pp-rec %s: %s", source.name, errors.decode(errors="replace")[-500:])
        return False
    return True


def mux_stretch(converted: dict[str, Path], output: Path, start_s: float) -> float:
    """Mux a stretch's video (WebM) and audio (Ogg Opus) as janus-pp-rec wrote them into one
    WebM whose timestamps start at `start_s` (no decoding); its duration in seconds."""
    sources = [av.open(str(path)) for path in converted.values()]
    end_s = start_s
    try:
        with av.open(str(output), "w", format="webm") as muxed:
            outputs = {
                id(source): muxed.add_stream_from_template(source.streams[0]) for source in sources
            }

            def timed(source: Any) -> Any:
                for packet in source.demux(source.streams[0]):
                    if packet.dts is not None:
                        yield float(packet.dts * packet.time_base), id(source), packet

            for _, origin, packet in heapq.merge(*map(timed, sources), key=lambda t: t[0]):
                shift = int(start_s / packet.time_base)
                packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                end_s = max(end_s, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                packet.stream = outputs[origin]
                muxed.mux(packet)
    finally:
        for source in sources:
            source.close()
    return end_s - start_s

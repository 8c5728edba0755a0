"""What a hub that died mid-recording (SIGKILL, a lost host) left on local disk reaches S3.

Each take of a live recording has a directory under the buffer directory
(`<recording>/<take>`), locked (`hold`, an advisory flock the kernel releases when its process
dies) for as long as a recorder writes in it, so a directory nobody holds is a dead hub's
leftovers. At start the hub recovers each one: the segments S3 lacks are uploaded through the
buffer (every leftover is first remuxed up to its last whole frame, since the one being written
when the hub died has no end), and once the recording is no longer live (the replica reaper
marks it `interrupted` when the dead hub's lease runs out) each participant's segments of the
take are joined and the manifest is rewritten. A take Janus recorded is converted then
(recordings.janus_take.finish_take), all its files as one stretch. Only then is the directory
removed: nothing written is dropped without a log line naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import asyncpg
import av

from domain.recordings import repository
from media.recorder import Segment
from recordings.buffer import SegmentBuffer
from recordings.janus_take import finish_take
from recordings.uploads import RecordingUploads

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
POLL_S = 1.0  # how often a recovered recording's state is read until it is no longer live


def hold(directory: Path) -> int | None:
    """An exclusive lock on a recording's directory, held until `release` or this process
    ends; None if another holder has it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release(fd: int) -> None:
    os.close(fd)  # closing the only descriptor drops the flock


def salvage(path: Path) -> Segment | None:
    """Remux a leftover segment in place up to its last readable frame; None if it holds no
    video frame at all (the hub died before the first was written, or mid-header)."""
    repaired = path.with_suffix(".salvaged")
    written: list[int] = []
    try:
        source = av.open(str(path))
    except av.error.FFmpegError:  # torn before its header was whole
        return None
    with source, av.open(str(repaired), "w", format="webm") as output:
        streams = {
            stream.index: output.add_stream_from_template(stream) for stream in source.streams
        }
        with contextlib.suppress(av.error.FFmpegError):  # the torn end of the file
            for packet in source.demux():
                if packet.dts is None or packet.pts is None:
                    continue
                if packet.stream.type == "video":
                    written.append(packet.pts)
                packet.stream = streams[packet.stream.index]
                output.mux(packet)
    if not written:
        repaired.unlink()
        return None
    os.replace(repaired, path)
    body = path.read_bytes()
    return Segment(
        seq=int(path.stem),
        path=path,
        start_s=min(written) / 1000,  # the recorder writes in milliseconds
        duration_s=(max(written) - min(written)) / 1000,
        size_bytes=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )


def _uuid(name: str) -> UUID | None:
    try:
        return UUID(name)
    except ValueError:
        return None


def _leftovers(directory: Path) -> Iterator[tuple[UUID, list[Path]]]:
    """Each participant's segment files in a recording's directory, in order."""
    for user_dir in sorted(directory.iterdir()):
        user_id = _uuid(user_dir.name)
        if user_id is not None and user_dir.is_dir():
            numbered = (path for path in user_dir.glob("*.webm") if path.stem.isdigit())
            files = sorted(numbered, key=lambda path: int(path.stem))
            yield user_id, files


class Recovery:
    def __init__(
        self,
        pool: asyncpg.Pool,
        uploads: RecordingUploads,
        buffer: SegmentBuffer,
        directory: Path,
    ) -> None:
        self._pool = pool
        self._uploads = uploads
        self._buffer = buffer
        self._directory = directory

    async def run(self) -> None:
        """Recover every take's directory nobody holds, one after another."""
        if not self._directory.is_dir():
            return
        for recording_dir in sorted(self._directory.iterdir()):
            recording_id = _uuid(recording_dir.name)
            if recording_id is None or not recording_dir.is_dir():
                continue
            for directory in sorted(recording_dir.iterdir()):
                if directory.is_dir() and directory.name.isdigit():
                    await self._recover_take(recording_id, int(directory.name), directory)
            with contextlib.suppress(OSError):  # a take may still be recording
                recording_dir.rmdir()

    async def _recover_take(self, recording_id: UUID, take: int, directory: Path) -> None:
        fd = hold(directory)
        if fd is None:
            return  # a recorder of a live process writes here
        try:
            if await self._recover(recording_id, take, directory):
                await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
        except Exception:
            log.exception("recording %s: take %d could not be recovered", recording_id, take)
        finally:
            release(fd)

    async def _recover(self, recording_id: UUID, take: int, directory: Path) -> bool:
        recording = await repository.get(self._pool, recording_id)
        if recording is None:
            log.error("leftovers of unknown recording %s kept in %s", recording_id, directory)
            return False
        written_by_janus = set(await asyncio.to_thread(lambda: list(directory.glob("*.mjr"))))
        if written_by_janus:  # a take Janus recorded: all it wrote, as one stretch
            await self._until_ended(recording_id)
            await finish_take(recording_id, take, directory, [written_by_janus], self._uploads)
            log.warning("recording %s: what Janus wrote for a hub that died is in S3", recording_id)
            return True
        uploaded = {
            (row["user_id"], row["seq"]): row
            for row in await self._pool.fetch(
                """SELECT user_id, seq, size_bytes, sha256, duration_s FROM recording_segments
                    WHERE recording_id = $1""",
                recording_id,
            )
        }
        segments: dict[UUID, list[Segment]] = {}
        for user_id, files in _leftovers(directory):
            theirs = segments[user_id] = []
            for path in files:
                row = uploaded.get((user_id, int(path.stem)))
                if row is not None:  # in S3 already: joined as it is
                    theirs.append(_uploaded_segment(path, row))
                    continue
                segment = await asyncio.to_thread(salvage, path)
                if segment is None:
                    log.warning("recording %s: %s held no frame, left out", recording_id, path)
                    continue
                await self._buffer.put_when_room(recording_id, user_id, segment)
                theirs.append(segment)
        await self._buffer.drained()
        log.warning(
            "recording %s: %d leftover segments of a hub that died are in S3",
            recording_id,
            sum(map(len, segments.values())),
        )
        await self._until_ended(recording_id)
        await self._uploads.finish(recording_id, take, segments)
        return True

    async def _until_ended(self, recording_id: UUID) -> None:
        """Until the recording is no longer live: the reaper ends it once the dead hub's
        lease is out (a row, not an event, so it is read again every POLL_S)."""
        while True:
            current = await repository.get(self._pool, recording_id)
            if current is None or not current.state.live:
                return
            await asyncio.sleep(POLL_S)


def _uploaded_segment(path: Path, row: asyncpg.Record) -> Segment:
    return Segment(
        seq=row["seq"],
        path=path,
        start_s=0.0,  # not needed to join: the file's timestamps place it
        duration_s=row["duration_s"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
    )

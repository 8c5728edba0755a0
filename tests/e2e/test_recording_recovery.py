"""A hub SIGKILLed while it records a consult: everything it had written reaches S3 once a hub
starts again on the same disk. The segments already uploaded stay, those still on disk (the
one being written is torn) are uploaded at the next start, the reaper ends the recording
`interrupted`, and each participant's segments are joined into their file and listed in the
manifest, each object's sha256 matching its row."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import av
import pytest

from bench.media.consults import make_video_consult
from bench.media.rtc_client import RtcClient
from pawhub.settings import Settings
from tests.e2e.hubs import start_hub_process
from tests.e2e.test_rtc_replicas import SHORT, kill
from tests.rest.test_attachments import s3_url  # noqa: F401 (moto's S3 server)
from tests.rest.test_recordings import s3_session
from tests.signaling.test_rtc_recording_media import BUCKET, sfu_call, start_recording

pytestmark = pytest.mark.slow

DEADLINE_S = 90


def segments_on_disk(directory: Path) -> set[tuple[UUID, int]]:
    return {
        (UUID(path.parent.name), int(path.stem))
        for path in directory.glob("*/*/*.webm")  # take / participant / segment
        if path.stem.isdigit()
    }


async def read(s3: Any, key: str) -> bytes:
    body: bytes = await (await s3.get_object(Bucket=BUCKET, Key=key))["Body"].read()
    return body


def video_frames(body: bytes, path: Path) -> int:
    path.write_bytes(body)
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def uploaded(pool: asyncpg.Pool, recording_id: str) -> set[tuple[UUID, int]]:
    rows = await pool.fetch(
        "SELECT user_id, seq FROM recording_segments WHERE recording_id = $1", recording_id
    )
    return {(row["user_id"], row["seq"]) for row in rows}


async def recovered_after_a_restart(
    settings: Settings, environment: dict[str, str], directory: Path
) -> None:
    """A hub started on the same disk recovers the recording's leftovers in `directory`
    (removed once done)."""
    restarted = await start_hub_process(settings, **SHORT, **environment)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while await asyncio.to_thread(directory.exists):  # removed once recovered
            assert time.monotonic() < deadline, "the leftovers were never recovered"
            await asyncio.sleep(0.5)
    finally:
        restarted.stop()


async def test_what_a_killed_hub_was_recording_reaches_s3_after_a_restart(
    settings: Settings,
    pool: asyncpg.Pool,
    s3_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with s3_session(s3_url) as s3:
        if BUCKET not in {found["Name"] for found in (await s3.list_buckets())["Buckets"]}:
            await s3.create_bucket(Bucket=BUCKET)
    disk = {"S3_ENDPOINT_URL": s3_url, "S3_BUCKET": BUCKET, "RECORDING_BUFFER_DIR": str(tmp_path)}
    consult = await make_video_consult(pool, settings.jwt_secret)
    doomed = await start_hub_process(settings, **SHORT, **disk)
    vet = await RtcClient.connect(doomed.url, consult.vet.token)
    owner = await RtcClient.connect(doomed.url, consult.owner.token)
    try:
        await sfu_call(consult, vet, owner)
        started = await start_recording(consult, vet, owner)
        recording_id = started["recording_id"]
        deadline = time.monotonic() + DEADLINE_S
        while len(await uploaded(pool, recording_id)) < 2:  # each one's first segment is in S3
            assert time.monotonic() < deadline, "no segment reached S3"
            await asyncio.sleep(0.5)
        await asyncio.sleep(4)  # well into each one's second segment
        kill(doomed)
    finally:
        await vet.close()
        await owner.close()
        doomed.stop()

    directory = tmp_path / recording_id
    left = segments_on_disk(directory)
    in_s3 = await uploaded(pool, recording_id)
    assert in_s3 < left, (in_s3, left)  # the torn segments had not been uploaded

    await recovered_after_a_restart(settings, disk, directory)

    row = await pool.fetchrow(
        "SELECT state, manifest_key FROM recordings WHERE id = $1", recording_id
    )
    assert row is not None and row["state"] == "interrupted"
    assert await uploaded(pool, recording_id) == left  # every segment written is in S3
    segments = await pool.fetch(
        "SELECT user_id, object_key, sha256 FROM recording_segments WHERE recording_id = $1",
        recording_id,
    )
    files = await pool.fetch(
        "SELECT user_id, object_key FROM recording_files WHERE recording_id = $1", recording_id
    )
    assert {file["user_id"] for file in files} == {UUID(consult.vet.id), UUID(consult.owner.id)}
    frames: Counter[UUID] = Counter()
    async with s3_session(s3_url) as s3:
        for segment in segments:
            body = await read(s3, segment["object_key"])
            assert hashlib.sha256(body).hexdigest() == segment["sha256"]
            in_segment = video_frames(body, tmp_path / "segment.webm")
            assert in_segment > 0, segment  # the torn one too
            frames[segment["user_id"]] += in_segment
        for file in files:  # each joined file holds every frame of its segments
            joined = video_frames(await read(s3, file["object_key"]), tmp_path / "joined.webm")
            assert joined == frames[file["user_id"]]
        manifest = json.loads(await read(s3, row["manifest_key"]))
    listed = {
        (UUID(user), entry["seq"])
        for user, participant in manifest["participants"].items()
        for entry in participant["segments"]
    }
    assert listed == left
    assert all(participant["files"] for participant in manifest["participants"].values())

"""A recording's media in a real S3 server (moto's, or S3_ENDPOINT_URL): each segment under an
unguessable key, encrypted at rest, with the sha256 stored for it; on finish each participant's
joined WebM (which PyAV opens: VP8 and Opus) and a manifest of segments, files and states."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import cast
from uuid import UUID

import asyncpg
import av

from bench.media.consults import make_video_consult
from domain.recordings import repository
from domain.recordings.lifecycle import RecordingState
from pawhub.settings import Settings
from recordings.uploads import RecordingUploads
from tests.conftest import RUN_ID
from tests.media.test_recorder import RECORDED_S, record_synthetic_call
from tests.rest.test_attachments import s3_url  # noqa: F401 (moto's S3 server)
from tests.rest.test_recordings import s3_session

BUCKET = f"pawhub-test-{RUN_ID}-recordings"


async def test_segments_then_joined_files_and_manifest_reach_s3_intact(
    s3_url: str,  # noqa: F811
    pool: asyncpg.Pool,
    settings: Settings,
    tmp_path: Path,
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        recording = await repository.start(conn, UUID(consult.id), consult.vet.user.id)
        await repository.change_state(
            conn, recording, RecordingState.stopped, consult.vet.user.id, "stopped by the vet"
        )
    segments = record_synthetic_call(tmp_path)
    owner = consult.owner.user.id

    async with s3_session(s3_url) as s3:
        await s3.create_bucket(Bucket=BUCKET)
        uploads = RecordingUploads(pool, s3, BUCKET)
        keys = [await uploads.upload_segment(recording.id, owner, s) for s in segments]
        await uploads.finish(recording.id, 1, {owner: segments})

        assert len(set(keys)) == len(keys)
        for key, segment in zip(keys, segments, strict=True):
            assert len(key.rsplit("/", 1)[1]) >= 32  # not guessable from the recording's id
            stored = await s3.get_object(Bucket=BUCKET, Key=key)
            body = await stored["Body"].read()
            assert stored["ServerSideEncryption"] == "AES256"
            assert hashlib.sha256(body).hexdigest() == segment.sha256
        rows = await pool.fetch(
            "SELECT seq, sha256, size_bytes FROM recording_segments WHERE recording_id = $1"
            " ORDER BY seq",
            recording.id,
        )
        assert [(r["seq"], r["sha256"], r["size_bytes"]) for r in rows] == [
            (s.seq, s.sha256, s.size_bytes) for s in segments
        ]

        manifest_key = await pool.fetchval(
            "SELECT manifest_key FROM recordings WHERE id = $1", recording.id
        )
        manifest = json.loads(
            await (await s3.get_object(Bucket=BUCKET, Key=manifest_key))["Body"].read()
        )
        mine = manifest["participants"][str(owner)]
        assert [entry["key"] for entry in mine["segments"]] == keys
        assert [state["state"] for state in manifest["states"]] == ["recording", "stopped"]

        joined = tmp_path / "downloaded.webm"
        stored = await s3.get_object(Bucket=BUCKET, Key=mine["files"][0]["key"])
        assert stored["ServerSideEncryption"] == "AES256"
        joined.write_bytes(await stored["Body"].read())
    with av.open(str(joined)) as container:
        kinds = {stream.type: stream.codec_context.name for stream in container.streams}
        assert kinds == {"video": "vp8", "audio": "opus"}
        assert container.duration is not None
        assert abs(container.duration / 1_000_000 - RECORDED_S) < 0.2 * RECORDED_S

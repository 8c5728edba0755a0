"""A recording's media into S3: each segment as soon as it closes, then on stop a manifest
tying segments, participants and pauses together and, per participant, their segments joined
(remuxed, media.recorder.join_segments) into the one WebM a download gives.

Every object is encrypted at rest by S3 (SSE, AES256) under an unguessable key; aioboto3's
managed transfer uploads large files in parts. Each segment's size and sha256 are stored with
it, so what reached S3 can be checked against what was written.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from media.recorder import Segment, join_segments

_SSE = {"ServerSideEncryption": "AES256"}


def _key(recording_id: UUID, suffix: str) -> str:
    return f"recordings/{recording_id}/{secrets.token_urlsafe(24)}{suffix}"


class RecordingUploads:
    def __init__(self, pool: asyncpg.Pool, s3: Any, bucket: str) -> None:
        self._pool = pool
        self._s3 = s3
        self._bucket = bucket

    async def upload_segment(self, recording_id: UUID, user_id: UUID, segment: Segment) -> str:
        """Put a closed segment into S3 and record it; its object key."""
        key = _key(recording_id, ".webm")
        await self._put_file(segment.path, key, "video/webm")
        await self._pool.execute(
            """INSERT INTO recording_segments (recording_id, user_id, seq, object_key, size_bytes,
                   sha256, duration_s, uploaded_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, now())
               ON CONFLICT (recording_id, user_id, seq) DO UPDATE  -- a retried upload
                   SET object_key = EXCLUDED.object_key, uploaded_at = EXCLUDED.uploaded_at""",
            recording_id,
            user_id,
            segment.seq,
            key,
            segment.size_bytes,
            segment.sha256,
            segment.duration_s,
        )
        return key

    async def finish(
        self, recording_id: UUID, take: int, segments: dict[UUID, list[Segment]]
    ) -> None:
        """Once a take of the recording ended: each participant's joined WebM of it, then the
        manifest (of every take so far)."""
        for user_id, theirs in segments.items():
            if not theirs:
                continue
            joined = theirs[0].path.parent / "joined.webm"
            await asyncio.to_thread(join_segments, [s.path for s in theirs], joined)
            key = _key(recording_id, ".webm")
            await self._put_file(joined, key, "video/webm")
            await self._pool.execute(
                """INSERT INTO recording_files
                       (recording_id, user_id, take, object_key, content_type, duration_s)
                   VALUES ($1, $2, $3, $4, 'video/webm', $5)
                   ON CONFLICT (recording_id, user_id, take) DO NOTHING  -- a recovery's rerun""",
                recording_id,
                user_id,
                take,
                key,
                sum(segment.duration_s for segment in theirs),
            )
        manifest_key = _key(recording_id, ".json")
        body = json.dumps(await self._manifest(recording_id), indent=1).encode()
        await self._s3.put_object(
            Bucket=self._bucket,
            Key=manifest_key,
            Body=body,
            ContentType="application/json",
            **_SSE,
        )
        await self._pool.execute(
            "UPDATE recordings SET manifest_key = $2 WHERE id = $1", recording_id, manifest_key
        )

    async def _manifest(self, recording_id: UUID) -> dict[str, Any]:
        segments = await self._pool.fetch(
            """SELECT user_id, seq, object_key, size_bytes, sha256, duration_s
                 FROM recording_segments WHERE recording_id = $1 ORDER BY user_id, seq""",
            recording_id,
        )
        files = await self._pool.fetch(
            """SELECT user_id, take, object_key, duration_s FROM recording_files
                WHERE recording_id = $1 ORDER BY take""",
            recording_id,
        )
        changes = await self._pool.fetch(
            """SELECT at, state, actor_id, reason FROM recording_events
                WHERE recording_id = $1 ORDER BY id""",
            recording_id,
        )
        participants: dict[str, dict[str, Any]] = {}
        for row in segments:
            entry = participants.setdefault(str(row["user_id"]), {"segments": [], "files": []})
            entry["segments"].append(
                {
                    "seq": row["seq"],
                    "key": row["object_key"],
                    "size_bytes": row["size_bytes"],
                    "sha256": row["sha256"],
                    "duration_s": row["duration_s"],
                }
            )
        for row in files:  # one per take, in order
            participants[str(row["user_id"])]["files"].append(
                {"take": row["take"], "key": row["object_key"], "duration_s": row["duration_s"]}
            )
        return {
            "recording_id": str(recording_id),
            "participants": participants,
            "states": [
                {
                    "at": row["at"].isoformat(),
                    "state": row["state"],
                    "by": None if row["actor_id"] is None else str(row["actor_id"]),
                    "reason": row["reason"],
                }
                for row in changes
            ],
        }

    async def _put_file(self, path: Path, key: str, content_type: str) -> None:
        extra = {"ContentType": content_type, **_SSE}
        await self._s3.upload_file(str(path), self._bucket, key, ExtraArgs=extra)

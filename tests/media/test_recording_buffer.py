"""S3 out of reach mid-recording: segments wait on local disk (the vet's warning raised as the
buffer nears its limit, a segment past it refused rather than dropped), and once S3 is back
every segment is in it with the right sha256."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import aioboto3
import asyncpg
import pytest
from aiobotocore.config import AioConfig

from bench.media.consults import make_video_consult
from domain.recordings import repository
from pawhub.settings import Settings
from recordings.buffer import BufferFull, BufferPressure, SegmentBuffer
from recordings.uploads import RecordingUploads
from tests.conftest import RUN_ID
from tests.media.test_recorder import record_synthetic_call
from tests.rest.test_attachments import s3_url  # noqa: F401 (moto's S3 server)

BUCKET = f"pawhub-test-{RUN_ID}-buffer"


class Switch:
    """A TCP relay to S3 that can be cut: while off, connections to it are refused."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self._target = (host, int(port))
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def on(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def off(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._open:  # kept-alive connections are cut too
            writer.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._open |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._open -= {writer, upstream_writer}


@pytest.fixture
async def switch(s3_url: str) -> AsyncIterator[Switch]:  # noqa: F811
    relay = Switch(s3_url)
    await relay.on()
    yield relay


def client(port: int) -> Any:
    return aioboto3.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="pawhub-dev",
        aws_secret_access_key="pawhub-dev",
        config=AioConfig(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}),
    )


async def test_segments_wait_for_s3_and_all_arrive_intact(
    switch: Switch, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with pool.acquire() as proxy:
        recording = await repository.start(
            cast(asyncpg.Connection, proxy), UUID(consult.id), consult.vet.user.id
        )
    segments = record_synthetic_call(tmp_path)
    owner = consult.owner.user.id
    limit = sum(segment.size_bytes for segment in segments)
    warnings: list[BufferPressure] = []

    async with client(switch.port) as s3:
        await s3.create_bucket(Bucket=BUCKET)
        await switch.off()  # S3 goes away mid-recording
        buffer = SegmentBuffer(
            RecordingUploads(pool, s3, BUCKET),
            max_bytes=limit,
            on_pressure=warnings.append,
            backoff_s=0.1,
        )
        uploading = asyncio.create_task(buffer.run())
        for segment in segments:
            buffer.put(recording.id, owner, segment)
        await asyncio.sleep(1)  # several failed attempts
        assert buffer.waiting_bytes == limit
        # told once, when what waits passed 80 % of the limit
        assert [warning.near_full for warning in warnings] == [True]
        assert 0.8 * limit <= warnings[0].waiting_bytes <= limit == warnings[0].limit_bytes
        with pytest.raises(BufferFull):
            buffer.put(recording.id, owner, segments[0])
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM recording_segments WHERE recording_id = $1", recording.id
            )
            == 0
        )

        await switch.on()  # S3 is back
        await asyncio.wait_for(buffer.drained(), 60)
        uploading.cancel()
        assert buffer.waiting_bytes == 0
        assert [warning.near_full for warning in warnings] == [True, False]  # and when it fell
        rows = await pool.fetch(
            "SELECT seq, object_key, sha256 FROM recording_segments WHERE recording_id = $1"
            " ORDER BY seq",
            recording.id,
        )
        assert [row["seq"] for row in rows] == [segment.seq for segment in segments]
        for row, segment in zip(rows, segments, strict=True):
            stored = await s3.get_object(Bucket=BUCKET, Key=row["object_key"])
            body = await stored["Body"].read()
            assert hashlib.sha256(body).hexdigest() == segment.sha256 == row["sha256"]
    await switch.off()

"""A consult's recordings over REST: listed for its vet, its owner and admins (404 for anyone
else), downloaded through presigned URLs of a real S3 server once stopped (409 before), every
access in the audit log; legal holds placed and released by admins only, each with its reason;
and `pawhub recordings purge`, which deletes media past retention except under legal hold,
leaving tombstones."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, cast
from uuid import UUID, uuid4

import aioboto3
import asyncpg
import httpx
import pytest

from bench.media.consults import Person, VideoConsult, make_person, make_video_consult
from domain.identity import Role
from domain.recordings import repository
from domain.recordings.lifecycle import RecordingState
from pawhub.settings import Settings
from tests.conftest import RUN_ID
from tests.rest.conftest import bearer
from tests.rest.test_attachments import api, s3_api, s3_url  # noqa: F401 (the S3-backed API)

WEBM = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 16  # stands for a participant's WebM


def s3_session(endpoint: str) -> Any:
    return aioboto3.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="pawhub-dev",
        aws_secret_access_key="pawhub-dev",
    )


async def put_object(endpoint: str, key: str, body: bytes) -> None:
    async with s3_session(endpoint) as client:
        bucket = f"pawhub-test-{RUN_ID}"
        buckets = await client.list_buckets()
        if bucket not in {found["Name"] for found in buckets["Buckets"]}:
            await client.create_bucket(Bucket=bucket)
        await client.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture
async def admin(pool: asyncpg.Pool, settings: Settings) -> Person:
    return await make_person(pool, settings.jwt_secret, Role.admin, "Ada Admin")


@pytest.fixture
async def stopped_recording(pool: asyncpg.Pool, consult: VideoConsult) -> UUID:
    return await recorded(pool, consult, stop=True)


@pytest.fixture
async def consult(pool: asyncpg.Pool, settings: Settings) -> VideoConsult:
    return await make_video_consult(pool, settings.jwt_secret)


async def recorded(pool: asyncpg.Pool, consult: VideoConsult, *, stop: bool) -> UUID:
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        recording = await repository.start(conn, UUID(consult.id), consult.vet.user.id)
        if stop:
            await repository.change_state(
                conn, recording, RecordingState.stopped, consult.vet.user.id, "stopped by the vet"
            )
    return recording.id


async def listed(client: httpx.AsyncClient, consult: VideoConsult, token: str) -> httpx.Response:
    return await client.get(f"/v1/consults/{consult.id}/recordings", headers=bearer(token))


async def download(client: httpx.AsyncClient, recording_id: UUID, token: str) -> httpx.Response:
    return await client.get(f"/v1/recordings/{recording_id}/download", headers=bearer(token))


async def test_the_vet_owner_and_admins_see_recordings_and_strangers_do_not(
    api: httpx.AsyncClient,  # noqa: F811
    pool: asyncpg.Pool,
    settings: Settings,
    consult: VideoConsult,
    admin: Person,
) -> None:
    recording_id = await recorded(pool, consult, stop=True)
    stranger = await make_person(pool, settings.jwt_secret, Role.owner, "Sam Stranger")
    other_vet = await make_person(pool, settings.jwt_secret, Role.vet, "Dr. Other")
    for person in (consult.vet, consult.owner, admin):
        response = await listed(api, consult, person.token)
        assert response.status_code == 200, response.text
        [entry] = response.json()
        assert entry["id"] == str(recording_id) and entry["state"] == "stopped"
        assert entry["consult_id"] == consult.id and entry["stopped_at"] is not None
    for person in (stranger, other_vet):
        assert (await listed(api, consult, person.token)).status_code == 404
        assert (await download(api, recording_id, person.token)).status_code == 404
    assert (await download(api, UUID(int=1), admin.token)).status_code == 404
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'recordings.list' AND target_id = $1",
        UUID(consult.id),
    )
    assert audited == 3


async def test_a_stopped_recording_downloads_through_presigned_urls_and_is_audited(
    api: httpx.AsyncClient,  # noqa: F811
    s3_url: str,  # noqa: F811
    pool: asyncpg.Pool,
    consult: VideoConsult,
) -> None:
    live = await recorded(pool, consult, stop=False)
    conflict = await download(api, live, consult.owner.token)
    assert conflict.status_code == 409, conflict.text
    async with pool.acquire() as proxy:
        recording = await repository.live(cast(asyncpg.Connection, proxy), UUID(consult.id))
        assert recording is not None
        await repository.change_state(
            cast(asyncpg.Connection, proxy), recording, RecordingState.stopped, None, "test"
        )
    key = f"recordings/{live}/{consult.owner.id}.webm"
    await put_object(s3_url, key, WEBM)
    await pool.execute(
        """INSERT INTO recording_files (recording_id, user_id, object_key, content_type, duration_s)
           VALUES ($1, $2, $3, 'video/webm', 12.5)""",
        live,
        consult.owner.user.id,
        key,
    )

    response = await download(api, live, consult.owner.token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["expires_in"] == 300
    [file] = body["files"]
    assert file["user_id"] == consult.owner.id
    assert file["content_type"] == "video/webm" and file["duration_s"] == 12.5
    async with httpx.AsyncClient(timeout=30) as raw:
        fetched = await raw.get(file["url"])
    assert fetched.status_code == 200 and fetched.content == WEBM
    trail = await pool.fetch(
        "SELECT actor_id, action FROM audit_log WHERE target_type = 'recording' AND target_id = $1",
        live,
    )
    assert [(row["actor_id"], row["action"]) for row in trail] == [
        (consult.owner.user.id, "recording.download")
    ]


async def hold(
    client: httpx.AsyncClient, recording_id: UUID, token: str, held: bool, reason: str
) -> httpx.Response:
    return await client.put(
        f"/v1/recordings/{recording_id}/legal-hold",
        json={"held": held, "reason": reason},
        headers=bearer(token),
    )


async def test_only_admins_place_and_release_legal_holds_each_kept_with_its_reason(
    api: httpx.AsyncClient,  # noqa: F811
    pool: asyncpg.Pool,
    settings: Settings,
    consult: VideoConsult,
    admin: Person,
    stopped_recording: UUID,
) -> None:
    recording_id = stopped_recording
    stranger = await make_person(pool, settings.jwt_secret, Role.vet, "Dr. Other Vet")
    for person, status in ((consult.vet, 403), (consult.owner, 403), (stranger, 404)):
        refused = await hold(api, recording_id, person.token, True, "complaint 17")
        assert refused.status_code == status, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await hold(api, uuid4(), admin.token, True, "complaint 17")).status_code == 404
    bad_bodies: list[dict[str, Any]] = [
        {"held": True},
        {"held": True, "reason": "   "},
        {"held": True, "reason": "x" * 501},
        {"held": "maybe", "reason": "complaint 17"},
        {"held": True, "reason": "complaint 17", "until": "forever"},
    ]
    for body in bad_bodies:
        refused = await api.put(
            f"/v1/recordings/{recording_id}/legal-hold", json=body, headers=bearer(admin.token)
        )
        assert refused.status_code == 400, (body, refused.text)
    assert await pool.fetchval("SELECT legal_hold FROM recordings WHERE id = $1", recording_id) is (
        False
    )

    placed = await hold(api, recording_id, admin.token, True, "  complaint 17 ")
    assert placed.status_code == 200, placed.text
    assert placed.json()["legal_hold"] is True and placed.json()["id"] == str(recording_id)
    [seen] = (await listed(api, consult, consult.owner.token)).json()
    assert seen["legal_hold"] is True
    for _ in range(3):  # placing it again changes nothing and records nothing
        again = await hold(api, recording_id, admin.token, True, "complaint 17, again")
        assert again.status_code == 200 and again.json()["legal_hold"] is True
    released = await hold(api, recording_id, admin.token, False, "claim settled")
    assert released.status_code == 200 and released.json()["legal_hold"] is False

    holds = await pool.fetch(
        "SELECT held, actor_id, reason FROM recording_holds WHERE recording_id = $1 ORDER BY id",
        recording_id,
    )
    assert [tuple(row) for row in holds] == [
        (True, admin.user.id, "complaint 17"),
        (False, admin.user.id, "claim settled"),
    ]
    trail = await pool.fetch(
        "SELECT actor_id, action FROM audit_log WHERE target_id = $1 AND action LIKE $2"
        " ORDER BY id",
        recording_id,
        "recording.legal_hold%",
    )
    assert [tuple(row) for row in trail] == [
        (admin.user.id, "recording.legal_hold"),
        (admin.user.id, "recording.legal_hold_released"),
    ]
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await pool.execute("UPDATE recording_holds SET reason = 'nothing happened'")


async def object_exists(endpoint: str, key: str) -> bool:
    async with s3_session(endpoint) as client:
        listed = await client.list_objects_v2(Bucket=f"pawhub-test-{RUN_ID}", Prefix=key)
        return bool(listed.get("KeyCount"))


async def test_purge_deletes_media_past_retention_but_not_under_legal_hold(
    api: httpx.AsyncClient,  # noqa: F811
    s3_url: str,  # noqa: F811
    pool: asyncpg.Pool,
    settings: Settings,
    database_url: str,
    admin: Person,
) -> None:
    expired, held, recent = [
        await recorded(pool, await make_video_consult(pool, settings.jwt_secret), stop=True)
        for _ in range(3)
    ]
    owners = {}
    for recording_id in (expired, held, recent):
        row = await pool.fetchrow(
            "SELECT c.owner_id FROM recordings r JOIN consults c ON c.id = r.consult_id"
            " WHERE r.id = $1",
            recording_id,
        )
        assert row is not None
        owners[recording_id] = row["owner_id"]
        key = f"recordings/{recording_id}/{owners[recording_id]}.webm"
        await put_object(s3_url, key, WEBM)
        await pool.execute(
            """INSERT INTO recording_files
                   (recording_id, user_id, object_key, content_type, duration_s)
               VALUES ($1, $2, $3, 'video/webm', 1)""",
            recording_id,
            owners[recording_id],
            key,
        )
    await pool.execute(
        "UPDATE recordings SET stopped_at = now() - interval '6 years' WHERE id = ANY($1::uuid[])",
        [expired, held],
    )
    placed = await hold(api, held, admin.token, True, "complaint 17")
    assert placed.status_code == 200, placed.text

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "S3_ENDPOINT_URL": s3_url,
        "S3_BUCKET": f"pawhub-test-{RUN_ID}",
    }
    purge = subprocess.run(
        [sys.executable, "-m", "pawhub", "recordings", "purge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert purge.returncode == 0, purge.stderr
    assert purge.stdout.strip() == "purged 1 recordings"

    assert not await object_exists(s3_url, f"recordings/{expired}/")
    assert await object_exists(s3_url, f"recordings/{held}/")
    assert await object_exists(s3_url, f"recordings/{recent}/")
    tombstone = await repository.get(pool, expired)
    assert tombstone is not None and tombstone.purged_at is not None
    kept = await repository.get(pool, held)
    assert kept is not None and kept.purged_at is None
    too_late = await hold(api, expired, admin.token, True, "complaint 18")
    assert too_late.status_code == 409, too_late.text

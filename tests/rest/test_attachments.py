"""EHR attachments end to end: a presigned PUT to a real S3 server (moto's, as a process over
HTTP, or S3_ENDPOINT_URL), the record accepted only for what was really uploaded, a presigned
GET that returns the same bytes, every presign audited, and 503 while S3 is out of reach."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from deploy.embedded import EmbeddedS3, free_port
from domain.identity import Role
from pawhub.settings import Settings
from tests.conftest import RUN_ID, machine_or_embedded, serve_api
from tests.rest.conftest import MakeUser, Visit, bearer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
ANNOUNCED = {"filename": "x-ray left paw.png", "content_type": "image/png", "size_bytes": len(PNG)}


@pytest.fixture(scope="session")
def s3_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from machine_or_embedded("S3_ENDPOINT_URL", EmbeddedS3, tmp_path_factory)


@pytest.fixture(scope="session")
async def s3_api(settings: Settings, s3_url: str) -> AsyncIterator[str]:
    """The API with attachments stored in a bucket of this run's own (created at start-up)."""
    s3 = settings.model_copy(
        update={"s3_endpoint_url": s3_url, "s3_bucket": f"pawhub-test-{RUN_ID}"}
    )
    async with serve_api(s3) as url:
        yield url


@pytest.fixture
async def api(s3_api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=s3_api, timeout=30) as client:
        yield client


async def presign(
    api: httpx.AsyncClient, pet_id: str, token: str, announced: dict[str, Any] = ANNOUNCED
) -> httpx.Response:
    return await api.post(f"/v1/pets/{pet_id}/attachments", json=announced, headers=bearer(token))


async def upload(upload: dict[str, Any], body: bytes, **headers: str) -> None:
    async with httpx.AsyncClient(timeout=30) as raw:
        put = await raw.put(upload["upload_url"], content=body, headers=upload["headers"] | headers)
    assert put.status_code == 200, put.text


async def file_record(
    api: httpx.AsyncClient, pet_id: str, token: str, object_key: str, **data: Any
) -> httpx.Response:
    return await api.post(
        f"/v1/pets/{pet_id}/records",
        json={"kind": "attachment", "data": {**ANNOUNCED, "object_key": object_key, **data}},
        headers=bearer(token),
    )


async def test_upload_file_and_download_the_same_bytes(
    api: httpx.AsyncClient, booked_visit: Visit, pool: asyncpg.Pool
) -> None:
    owner, (vet, vet_token), pet = booked_visit
    started = await presign(api, pet["id"], vet_token)
    assert started.status_code == 201, started.text
    issued = started.json()
    key = issued["object_key"]
    assert key.startswith(f"pets/{pet['id']}/") and key.endswith("/x-ray_left_paw.png")
    assert issued["expires_in"] > 0
    assert issued["headers"] == {"Content-Type": "image/png", "Content-Length": str(len(PNG))}
    await upload(issued, PNG)

    filed = await file_record(api, pet["id"], vet_token, key)
    assert filed.status_code == 201, filed.text
    record = filed.json()
    assert record["data"]["object_key"] == key and record["download_url"] is None

    read = await api.get(f"/v1/records/{record['id']}", headers=bearer(owner[1]))
    assert read.status_code == 200, read.text
    download_url = read.json()["download_url"]
    async with httpx.AsyncClient(timeout=30) as raw:
        downloaded = await raw.get(download_url)
    assert downloaded.status_code == 200
    assert downloaded.content == PNG
    assert downloaded.headers["content-type"] == "image/png"
    listed = await api.get(f"/v1/pets/{pet['id']}/records", headers=bearer(owner[1]))
    assert [r["data"]["object_key"] for r in listed.json()] == [key]

    attachment_id = UUID(key.split("/")[2])
    rows = await pool.fetch(
        "SELECT actor_id, action FROM audit_log WHERE target_type = 'attachment' "
        "AND target_id = $1 ORDER BY id",
        attachment_id,
    )
    assert [(r["actor_id"], r["action"]) for r in rows] == [
        (vet.id, "ehr.attachment.presign_put"),
        (owner[0].id, "ehr.attachment.presign_get"),
    ]


async def test_only_vets_who_see_the_pet_may_upload_and_only_allowed_files(
    api: httpx.AsyncClient, make_user: MakeUser, booked_visit: Visit
) -> None:
    owner, booked_vet, pet = booked_visit
    by_owner = await presign(api, pet["id"], owner[1])
    assert by_owner.status_code == 403
    _, other_vet = await make_user(Role.vet)
    unseen = await presign(api, pet["id"], other_vet)
    assert unseen.status_code == 404
    assert unseen.headers["content-type"].startswith("application/problem+json")
    for announced in (
        {**ANNOUNCED, "content_type": "application/x-msdownload"},
        {**ANNOUNCED, "size_bytes": 25 * 1024 * 1024 + 1},
        {**ANNOUNCED, "size_bytes": 0},
        {**ANNOUNCED, "colour": "grey"},
    ):
        refused = await presign(api, pet["id"], booked_vet[1], announced)
        assert refused.status_code == 400, announced
    # Nor can a record name a disallowed type, whatever was uploaded.
    issued = (await presign(api, pet["id"], booked_vet[1])).json()
    await upload(issued, PNG)
    exe = await file_record(
        api,
        pet["id"],
        booked_vet[1],
        issued["object_key"],
        content_type="application/x-msdownload",
    )
    assert exe.status_code == 400


async def test_a_record_is_refused_unless_its_object_is_uploaded_as_announced(
    api: httpx.AsyncClient, booked_visit: Visit
) -> None:
    owner, (_, vet_token), pet = booked_visit

    missing = (await presign(api, pet["id"], vet_token)).json()
    nothing = await file_record(api, pet["id"], vet_token, missing["object_key"])
    assert nothing.status_code == 409 and "uploaded" in nothing.json()["detail"]

    short = (await presign(api, pet["id"], vet_token)).json()
    # The embedded store does not check the URL's signed length; the record check still does.
    await upload(short, PNG[:100], **{"Content-Length": "100"})
    wrong_size = await file_record(api, pet["id"], vet_token, short["object_key"])
    assert wrong_size.status_code == 409 and "100 bytes" in wrong_size.json()["detail"]

    retyped = (await presign(api, pet["id"], vet_token)).json()
    await upload(retyped, PNG, **{"Content-Type": "image/jpeg"})
    wrong_type = await file_record(api, pet["id"], vet_token, retyped["object_key"])
    assert wrong_type.status_code == 409 and "image/jpeg" in wrong_type.json()["detail"]

    good = (await presign(api, pet["id"], vet_token)).json()
    await upload(good, PNG)
    not_a_key = await file_record(api, pet["id"], vet_token, "../../etc/passwd")
    assert not_a_key.status_code == 400

    listed = await api.get(f"/v1/pets/{pet['id']}/records", headers=bearer(owner[1]))
    assert listed.json() == []
    assert (await file_record(api, pet["id"], vet_token, good["object_key"])).status_code == 201


async def test_an_object_of_another_pet_is_refused(
    api: httpx.AsyncClient, booked_visit: Visit
) -> None:
    _, (_, vet_token), pet = booked_visit
    issued = (await presign(api, pet["id"], vet_token)).json()
    await upload(issued, PNG)
    foreign_key = issued["object_key"].replace(pet["id"], "00000000-0000-4000-8000-000000000000")
    refused = await file_record(api, pet["id"], vet_token, foreign_key)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_without_s3_the_api_serves_and_attachments_answer_503(
    settings: Settings, booked_visit: Visit
) -> None:
    owner, booked_vet, pet = booked_visit
    nowhere = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    async with serve_api(nowhere) as url, httpx.AsyncClient(base_url=url, timeout=60) as api:
        assert (await api.get("/healthz")).status_code == 200
        read = await api.get(f"/v1/pets/{pet['id']}", headers=bearer(owner[1]))
        assert read.status_code == 200
        for response in (
            await presign(api, pet["id"], booked_vet[1]),
            await file_record(
                api,
                pet["id"],
                booked_vet[1],
                f"pets/{pet['id']}/00000000-0000-4000-8000-000000000000/a.png",
            ),
        ):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["status"] == 503
        # A refused attachment leaves no record behind.
        listed = await api.get(f"/v1/pets/{pet['id']}/records", headers=bearer(owner[1]))
        assert listed.json() == []

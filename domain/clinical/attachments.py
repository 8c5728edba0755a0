"""EHR attachments: a vet uploads a file straight to S3 through a presigned PUT URL, then files
an `attachment` record naming its object, which is accepted only once the object is there and
matches what the record says. Readers get short-lived presigned GET URLs. Every presign is
audited in the transaction that checked the caller may see the pet."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID, uuid4

import asyncpg
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from domain import audit
from domain.audit import Actor
from domain.clinical.pets import visible_to
from domain.errors import Conflict, Invalid, NotFound, Unavailable
from domain.fields import ShortText

log = logging.getLogger(__name__)

MAX_BYTES = 25 * 1024 * 1024
UPLOAD_TTL_S = 15 * 60
DOWNLOAD_TTL_S = 5 * 60
# What a clinic files: documents, photos, radiographs (DICOM), lab exports.
ALLOWED_TYPES = frozenset(
    {
        "application/pdf",
        "application/dicom",
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/heic",
        "text/plain",
        "text/csv",
    }
)


def _allowed(content_type: str) -> str:
    if content_type not in ALLOWED_TYPES:
        raise ValueError(f"content_type must be one of {', '.join(sorted(ALLOWED_TYPES))}")
    return content_type


ContentType = Annotated[
    str, StringConstraints(max_length=100, to_lower=True), AfterValidator(_allowed)
]
Size = Annotated[int, Field(ge=1, le=MAX_BYTES, description="bytes, at most 25 MiB")]
# pets/<pet id>/<attachment id>/<file name>, as `object_key_for` makes it.
ObjectKey = Annotated[
    str,
    StringConstraints(
        max_length=300,
        pattern=r"^pets/[0-9a-f-]{36}/[0-9a-f-]{36}/[A-Za-z0-9._-]{1,100}$",
    ),
]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class AttachmentData(BaseModel):
    """An `attachment` record's data: an object uploaded through `POST
    /v1/pets/{id}/attachments`, with the name, type and size it was announced with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    object_key: ObjectKey
    filename: ShortText
    content_type: ContentType
    size_bytes: Size


class NewUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: ShortText
    content_type: ContentType
    size_bytes: Size


class Upload(BaseModel):
    """Where to PUT the file; send exactly `headers` with it, before `expires_in` seconds pass.
    Then write an `attachment` record with `object_key` and the announced name, type and size."""

    upload_url: str
    object_key: str
    expires_in: int
    headers: dict[str, str]


class StorageUnavailable(Unavailable):
    """S3 cannot be reached (or refuses our credentials) right now."""


@dataclass(frozen=True)
class StoredObject:
    size_bytes: int
    content_type: str


def object_key_for(pet_id: UUID, attachment_id: UUID, filename: str) -> str:
    safe = _UNSAFE.sub("_", filename).lstrip(".")[-100:] or "file"
    return f"pets/{pet_id}/{attachment_id}/{safe}"


def attachment_id_of(object_key: str) -> UUID:
    return UUID(object_key.split("/")[2])


class ObjectStore:
    """The attachments bucket, through an aioboto3 S3 client. Any failure to reach S3 raises
    StorageUnavailable, so callers answer 503 and the API keeps serving everything else."""

    def __init__(self, client: Any, bucket: str, region: str) -> None:
        self._client = client
        self._bucket = bucket
        self._region = region
        self._ready = False
        self._ready_lock = asyncio.Lock()

    async def ensure_bucket(self) -> None:
        """Create the bucket when missing (the embedded store starts empty); checked once."""
        async with self._ready_lock:
            if self._ready:
                return
            try:
                try:
                    await self._client.head_bucket(Bucket=self._bucket)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                        raise
                    location = (
                        {}
                        if self._region == "us-east-1"
                        else {"CreateBucketConfiguration": {"LocationConstraint": self._region}}
                    )
                    await self._client.create_bucket(Bucket=self._bucket, **location)
            except (BotoCoreError, ClientError, OSError) as exc:
                raise StorageUnavailable(f"file storage is unavailable: {exc}") from exc
            self._ready = True

    async def presign_put(self, key: str, content_type: str, size_bytes: int) -> str:
        await self.ensure_bucket()
        params = {
            "Bucket": self._bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": size_bytes,
        }
        return await self._presign("put_object", params, UPLOAD_TTL_S)

    async def presign_get(self, key: str, filename: str, content_type: str) -> str:
        params = {
            "Bucket": self._bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f'attachment; filename="{_UNSAFE.sub("_", filename)}"',
        }
        return await self._presign("get_object", params, DOWNLOAD_TTL_S)

    async def head(self, key: str) -> StoredObject | None:
        try:
            found = await self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise StorageUnavailable(f"file storage is unavailable: {exc}") from exc
        except (BotoCoreError, OSError) as exc:
            raise StorageUnavailable(f"file storage is unavailable: {exc}") from exc
        content_type = str(found.get("ContentType", "")).split(";")[0].strip().lower()
        return StoredObject(int(found["ContentLength"]), content_type)

    async def _presign(self, method: str, params: dict[str, Any], ttl_s: int) -> str:
        try:
            url: str = await self._client.generate_presigned_url(
                method, Params=params, ExpiresIn=ttl_s
            )
        except BotoCoreError as exc:  # e.g. no credentials found
            raise StorageUnavailable(f"file storage is unavailable: {exc}") from exc
        return url


async def start_upload(
    conn: asyncpg.Connection, store: ObjectStore, actor: Actor, pet_id: UUID, new: NewUpload
) -> Upload:
    """A presigned PUT for a new object under the pet's prefix, for a vet who sees the pet."""
    attachment_id = uuid4()
    key = object_key_for(pet_id, attachment_id, new.filename)
    async with conn.transaction():
        visible = await conn.fetchval(
            f"SELECT 1 FROM pets p WHERE p.id = $1 AND {visible_to('$2')}", pet_id, actor.user_id
        )
        if visible is None:
            raise NotFound("no such pet")
        url = await store.presign_put(key, new.content_type, new.size_bytes)
        await audit.append(conn, actor, "ehr.attachment.presign_put", "attachment", attachment_id)
    return Upload(
        upload_url=url,
        object_key=key,
        expires_in=UPLOAD_TTL_S,
        headers={"Content-Type": new.content_type, "Content-Length": str(new.size_bytes)},
    )


async def check_uploaded(store: ObjectStore, pet_id: UUID, data: AttachmentData) -> None:
    """The record may be filed: its object was issued for this pet, is in S3, and is what the
    record says it is (the PUT signature binds type and size on AWS; the embedded store does
    not check signatures, so this is where a wrong upload is caught)."""
    if not data.object_key.startswith(f"pets/{pet_id}/"):
        raise Invalid("object_key was not issued for this pet")
    stored = await store.head(data.object_key)
    if stored is None:
        raise Conflict("nothing has been uploaded at object_key yet")
    if stored.size_bytes != data.size_bytes:
        raise Conflict(f"the uploaded object has {stored.size_bytes} bytes, not {data.size_bytes}")
    if stored.content_type != data.content_type:
        raise Conflict(
            f"the uploaded object is {stored.content_type or 'untyped'}, not {data.content_type}"
        )


async def download_url(
    conn: asyncpg.Connection, store: ObjectStore, actor: Actor, data: AttachmentData
) -> str:
    """A presigned GET for a record the caller was just shown, audited in the caller's
    transaction."""
    url = await store.presign_get(data.object_key, data.filename, data.content_type)
    await audit.append(
        conn, actor, "ehr.attachment.presign_get", "attachment", attachment_id_of(data.object_key)
    )
    return url

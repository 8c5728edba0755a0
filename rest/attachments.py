"""EHR attachments over HTTP: presigned uploads, the S3 client's lifetime, and 503 while S3 is
out of reach (the rest of the API keeps working)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import aioboto3
from aiobotocore.config import AioConfig
from litestar import Controller, Litestar, Request, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from domain import attachments
from domain.attachments import NewUpload, ObjectStore, StorageUnavailable, Upload
from domain.permissions import may_write_records
from pawhub.settings import Settings
from rest.auth import SECURED, CurrentActor, Db
from rest.guards import role_allows
from rest.problems import problem, problem_responses

log = logging.getLogger(__name__)

# Credentials any S3 stand-in accepts: the embedded store checks none.
_DEV_CREDENTIALS = {"aws_access_key_id": "pawhub-dev", "aws_secret_access_key": "pawhub-dev"}


def object_storage(
    settings: Settings,
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan holding `app.state.s3`. The bucket is ensured in the background, so an
    unreachable S3 never delays or stops start-up; it is retried on the first upload."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        credentials: dict[str, str | None] = {
            "aws_access_key_id": settings.s3_access_key_id,
            "aws_secret_access_key": settings.s3_secret_access_key,
        }
        if (
            settings.s3_endpoint_url
            and not settings.s3_access_key_id
            and not settings.is_production
        ):
            credentials = {**_DEV_CREDENTIALS}
        config = AioConfig(
            signature_version="s3v4",
            connect_timeout=2,
            read_timeout=10,
            retries={"max_attempts": 2, "mode": "standard"},
            # Path-style URLs work with any endpoint (moto, MinIO, an IP address).
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
        )
        client_context = aioboto3.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=config,
            **credentials,
        )
        async with client_context as client:
            store = ObjectStore(client, settings.s3_bucket, settings.s3_region)
            app.state.s3 = store
            warm_up = asyncio.create_task(_ensure_bucket(store))
            try:
                yield
            finally:
                warm_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warm_up

    return lifespan


async def _ensure_bucket(store: ObjectStore) -> None:
    try:
        await store.ensure_bucket()
    except StorageUnavailable as exc:
        log.warning("attachments answer 503 until S3 is reachable: %s", exc)


def provide_store(state: State) -> ObjectStore:
    store: ObjectStore = state.s3
    return store


def storage_unavailable(_: Request[Any, Any, Any], exc: StorageUnavailable) -> Response[Any]:
    return problem(503, str(exc))


Store = NamedDependency[ObjectStore]
# For controllers that touch S3: the store, and 503 when it is out of reach.
STORE_DEPENDENCIES = {"store": Provide(provide_store, sync_to_thread=False)}
STORE_EXCEPTION_HANDLERS = {StorageUnavailable: storage_unavailable}


class AttachmentController(Controller):
    path = "/v1/pets/{pet_id:uuid}/attachments"
    tags = ["pets"]
    security = SECURED
    dependencies = STORE_DEPENDENCIES
    exception_handlers = STORE_EXCEPTION_HANDLERS  # type: ignore[assignment]

    @post(
        summary="A presigned URL to upload a file for an attachment record (vets who see the pet)",
        description=(
            "PUT the file to `upload_url` with exactly `headers` within `expires_in` seconds, "
            "then write an `attachment` record with `object_key` and the same file name, "
            "content type and size. At most 25 MiB; PDF, DICOM, JPEG, PNG, WebP, HEIC, text "
            "or CSV."
        ),
        guards=[role_allows(may_write_records, "write health records")],
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def start_upload(
        self,
        db: Db,
        store: Store,
        actor: CurrentActor,
        pet_id: FromPath[UUID],
        data: JSONBody[NewUpload],
    ) -> Upload:
        return await attachments.start_upload(db, store, actor, pet_id, data)

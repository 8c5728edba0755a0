"""EHR attachments over HTTP: presigned uploads, the S3 client's lifetime, and 503 while S3 is
out of reach (the rest of the API keeps working)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

from litestar import Controller, Litestar, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from domain.clinical import attachments
from domain.clinical.attachments import NewUpload, ObjectStore, StorageUnavailable, Upload
from domain.identity.permissions import may_write_records
from rest.auth import SECURED, CurrentActor, Db
from rest.guards import role_allows
from rest.problems import problem_responses

log = logging.getLogger(__name__)


def object_storage(
    open_client: Callable[[], contextlib.AbstractAsyncContextManager[Any]], bucket: str, region: str
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan holding `app.state.s3`, a store of `bucket` over the S3 client `open_client`
    opens (the composition root knows how). The bucket is ensured in the background, so an
    unreachable S3 never delays or stops start-up; it is retried on the first upload."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_client() as client:
            store = ObjectStore(client, bucket, region)
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


Store = NamedDependency[ObjectStore]


class PetRecordsController(Controller):
    """Base of the pets' controllers (pets, records, attachments): secured and given the S3
    `store` (StorageUnavailable answers 503, like every Unavailable)."""

    tags = ["pets"]
    security = SECURED
    dependencies = {"store": Provide(provide_store, sync_to_thread=False)}


class AttachmentController(PetRecordsController):
    path = "/v1/pets/{pet_id:uuid}/attachments"

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

"""`GET /v1/consults/{id}/recordings` and `GET /v1/recordings/{id}/download`: the consult's vet
and owner and admins only (404 for anyone else), each access audited; downloads are presigned
GET URLs valid DOWNLOAD_TTL_S, one WebM per participant. `PUT /v1/recordings/{id}/legal-hold`:
admins place and release legal holds, with a reason."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, StringConstraints

from domain.clinical.attachments import DOWNLOAD_TTL_S
from domain.fields import NO_NUL
from domain.recordings import access
from domain.recordings.holds import MAX_REASON, set_legal_hold
from rest.auth import SECURED, CurrentActor, CurrentPrincipal, Db
from rest.clinical.attachments import Store, provide_store
from rest.problems import problem_responses


class LegalHold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    held: bool
    reason: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=MAX_REASON, pattern=NO_NUL
        ),
    ]


class RecordingController(Controller):
    tags = ["recordings"]
    security = SECURED
    dependencies = {"store": Provide(provide_store, sync_to_thread=False)}

    @get(
        "/v1/consults/{consult_id:uuid}/recordings",
        summary="A consult's recordings (its vet, its owner, admins)",
        responses=problem_responses(400, 401, 404),
    )
    async def list_recordings(
        self,
        db: Db,
        principal: CurrentPrincipal,
        actor: CurrentActor,
        consult_id: FromPath[UUID],
    ) -> list[dict[str, Any]]:
        recordings = await access.recordings_of(db, principal, actor, consult_id)
        return [recording.public() for recording in recordings]

    @get(
        "/v1/recordings/{recording_id:uuid}/download",
        summary="Presigned URLs of a stopped recording's files, one WebM per participant",
        description=f"Each `url` is valid for `expires_in` ({DOWNLOAD_TTL_S}) seconds.",
        responses=problem_responses(400, 401, 404, 409, 503),
    )
    async def download(
        self,
        db: Db,
        principal: CurrentPrincipal,
        actor: CurrentActor,
        store: Store,
        recording_id: FromPath[UUID],
    ) -> dict[str, Any]:
        files = await access.files_to_download(db, principal, actor, recording_id)
        return {
            "expires_in": DOWNLOAD_TTL_S,
            "files": [
                {
                    "user_id": str(file.user_id),
                    "url": await store.presign_get(
                        file.object_key,
                        f"recording-{recording_id}-{file.user_id}.webm",
                        file.content_type,
                    ),
                    "content_type": file.content_type,
                    "duration_s": round(file.duration_s, 3),
                }
                for file in files
            ],
        }

    @put(
        "/v1/recordings/{recording_id:uuid}/legal-hold",
        summary="Place or release a recording's legal hold (admins): held ones are never purged",
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def legal_hold(
        self,
        db: Db,
        principal: CurrentPrincipal,
        actor: CurrentActor,
        recording_id: FromPath[UUID],
        data: JSONBody[LegalHold],
    ) -> dict[str, Any]:
        recording = await set_legal_hold(
            db, principal, actor, recording_id, held=data.held, reason=data.reason
        )
        return recording.public()

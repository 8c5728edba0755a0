"""Electronic health records: typed entries by vets, signed at creation, locked after 24 hours,
amended (never rewritten) after that, never deleted. Every read and write is audited in the same
transaction or statement as the access itself."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, Self
from uuid import UUID

import asyncpg
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    computed_field,
    model_validator,
)

from domain import attachments, audit
from domain.attachments import AttachmentData, ObjectStore, StorageUnavailable
from domain.audit import Actor
from domain.errors import Conflict, Forbidden, NotFound
from domain.fields import NO_NUL, LongText, ShortText
from domain.pets import visible_to

LOCK_AFTER = timedelta(hours=24)
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class RecordKind(StrEnum):
    note = "note"
    vaccination = "vaccination"
    prescription = "prescription"
    weight = "weight"
    allergy = "allergy"
    lab = "lab"
    attachment = "attachment"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoteData(_Data):
    """A SOAP note."""

    subjective: LongText
    objective: LongText
    assessment: LongText
    plan: LongText


class VaccinationData(_Data):
    vaccine: ShortText
    lot: ShortText
    given_on: date
    next_due: date | None = None

    @model_validator(mode="after")
    def _due_after_given(self) -> Self:
        if self.next_due is not None and self.next_due < self.given_on:
            raise ValueError("next_due is before given_on")
        return self


class PrescriptionData(_Data):
    drug: ShortText
    dose: ShortText
    route: ShortText
    frequency: ShortText
    duration_days: int = Field(ge=1, le=3650)
    refills: int = Field(default=0, ge=0, le=100)


class WeightData(_Data):
    kg: float = Field(gt=0, le=2000, allow_inf_nan=False)


class AllergyData(_Data):
    allergen: ShortText
    reaction: ShortText | None = None
    severity: Literal["mild", "moderate", "severe"] | None = None


class ReferenceRange(_Data):
    low: FiniteFloat | None = None
    high: FiniteFloat | None = None


class LabData(_Data):
    test: ShortText
    value: FiniteFloat | ShortText
    units: ShortText | None = None
    reference_range: ReferenceRange | None = None


DATA_MODELS: dict[RecordKind, type[BaseModel]] = {
    RecordKind.note: NoteData,
    RecordKind.vaccination: VaccinationData,
    RecordKind.prescription: PrescriptionData,
    RecordKind.weight: WeightData,
    RecordKind.allergy: AllergyData,
    RecordKind.lab: LabData,
    RecordKind.attachment: AttachmentData,
}


class _NewRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewNote(_NewRecord):
    kind: Literal[RecordKind.note]
    data: NoteData


class NewVaccination(_NewRecord):
    kind: Literal[RecordKind.vaccination]
    data: VaccinationData


class NewPrescription(_NewRecord):
    kind: Literal[RecordKind.prescription]
    data: PrescriptionData


class NewWeight(_NewRecord):
    kind: Literal[RecordKind.weight]
    data: WeightData


class NewAllergy(_NewRecord):
    kind: Literal[RecordKind.allergy]
    data: AllergyData


class NewLab(_NewRecord):
    kind: Literal[RecordKind.lab]
    data: LabData


class NewAttachment(_NewRecord):
    kind: Literal[RecordKind.attachment]
    data: AttachmentData


AnyNewRecord = (
    NewNote | NewVaccination | NewPrescription | NewWeight | NewAllergy | NewLab | NewAttachment
)


class NewRecord(RootModel[Annotated[AnyNewRecord, Field(discriminator="kind")]]):
    """A record to write: its kind picks the model its data must match."""


class NewAmendment(BaseModel):
    """The record's content as it should now read (validated against the record's kind)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=NO_NUL)]
    data: dict[str, Any]


class RecordCorrection(BaseModel):
    """New content for a record still inside its 24-hour edit window."""

    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any]


class Amendment(BaseModel):
    id: UUID
    author_id: UUID
    reason: str
    data: dict[str, Any]
    content_sha256: str
    created_at: datetime


class Record(BaseModel):
    """A record as signed by its author (author_id, created_at, content_sha256)."""

    id: UUID
    pet_id: UUID
    kind: RecordKind
    data: dict[str, Any]
    author_id: UUID
    content_sha256: str
    created_at: datetime
    updated_at: datetime | None
    amendments: list[Amendment]
    download_url: str | None = Field(
        default=None,
        description="attachment records read one by one: a presigned GET of the file, "
        "valid for a few minutes",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def locked_at(self) -> datetime:
        return self.created_at + LOCK_AFTER


def is_locked(created_at: datetime, now: datetime) -> bool:
    return now >= created_at + LOCK_AFTER


def validate_data(kind: RecordKind, data: dict[str, Any]) -> BaseModel:
    """Check `data` against its kind's model; raises pydantic's ValidationError."""
    return DATA_MODELS[kind].model_validate(data)


def content_digest(pet_id: UUID, kind: RecordKind, data: BaseModel, author_id: UUID) -> str:
    """SHA-256 of the canonical JSON of what the author signs."""
    canonical = json.dumps(
        {
            "pet_id": str(pet_id),
            "kind": kind.value,
            "data": data.model_dump(mode="json"),
            "author_id": str(author_id),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_SELECT_VISIBLE_RECORD = (
    "SELECT row_to_json(v)::text FROM ehr_record_view v JOIN pets p ON p.id = v.pet_id "
    f"WHERE v.id = $1 AND {visible_to('$2')}"
)


async def _visible_record(conn: asyncpg.Connection, record_id: UUID, user_id: UUID) -> Record:
    text = await conn.fetchval(_SELECT_VISIBLE_RECORD, record_id, user_id)
    if text is None:
        raise NotFound("no such record")
    return Record.model_validate_json(text)


async def _check_attachment(store: ObjectStore | None, pet_id: UUID, data: BaseModel) -> None:
    if isinstance(data, AttachmentData):
        if store is None:
            raise StorageUnavailable("file storage is not configured")
        await attachments.check_uploaded(store, pet_id, data)


async def add_record(
    conn: asyncpg.Connection,
    actor: Actor,
    pet_id: UUID,
    new: AnyNewRecord,
    store: ObjectStore | None = None,
) -> Record:
    """A vet writes a record for a pet they see; it is signed by them now. An attachment is
    accepted once its object is in `store` as described."""
    kind, data = RecordKind(new.kind), new.data
    async with conn.transaction():
        visible = await conn.fetchval(
            f"SELECT 1 FROM pets p WHERE p.id = $1 AND {visible_to('$2')}", pet_id, actor.user_id
        )
        if visible is None:
            raise NotFound("no such pet")
        await _check_attachment(store, pet_id, data)
        record_id: UUID = await conn.fetchval(
            "INSERT INTO ehr_records (pet_id, kind, data, author_id, content_sha256) "
            "VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING id",
            pet_id,
            kind.value,
            data.model_dump_json(),
            actor.user_id,
            content_digest(pet_id, kind, data, actor.user_id),
        )
        await audit.append(conn, actor, "ehr.record.create", "record", record_id)
        return await _visible_record(conn, record_id, actor.user_id)


class RecordsRead(NamedTuple):
    """One caller's read of one pet's records."""

    actor: Actor
    pet_id: UUID


async def list_records(
    conn: asyncpg.Connection | asyncpg.Pool, reads: Sequence[RecordsRead]
) -> list[str | NotFound]:
    """Each read's records, oldest first, as the JSON of `list[Record]`, or NotFound.

    The hottest EHR read, made for group commit (`pawhub.batching`): ONE statement checks
    every read's visibility, writes its audit entry and has PostgreSQL build the JSON of each
    pet once, so no row is decoded and re-encoded in Python. Rows with an ordinal answer a
    read; rows without one carry a pet's records.
    """
    rows = await conn.fetch(
        f"""WITH asked AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[])
                                    WITH ORDINALITY AS a(pet_id, user_id, ip, user_agent, n)),
                 seen AS (SELECT a.* FROM asked a JOIN pets p ON p.id = a.pet_id
                           WHERE {visible_to("a.user_id")}),
                 logged AS (INSERT INTO audit_log ({audit.COLUMNS})
                            SELECT user_id, 'ehr.records.list', 'pet', pet_id, ip, user_agent
                              FROM seen ORDER BY n)
            SELECT n, pet_id, NULL AS records FROM seen
            UNION ALL
            SELECT NULL, d.pet_id,
                   (SELECT COALESCE(json_agg(v ORDER BY v.created_at, v.id), '[]')::text
                      FROM ehr_record_view v WHERE v.pet_id = d.pet_id)
              FROM (SELECT DISTINCT pet_id FROM seen) d""",
        [read.pet_id for read in reads],
        [read.actor.user_id for read in reads],
        [read.actor.ip for read in reads],
        [read.actor.user_agent for read in reads],
    )
    records = {row["pet_id"]: row["records"] for row in rows if row["n"] is None}
    answered = {row["n"] - 1: records[row["pet_id"]] for row in rows if row["n"] is not None}
    # A pet not visible to its reader answers like a pet that does not exist; nothing is logged.
    return [answered.get(i) or NotFound("no such pet") for i in range(len(reads))]


async def get_record(
    conn: asyncpg.Connection, actor: Actor, record_id: UUID, store: ObjectStore | None = None
) -> Record:
    """A record the caller sees; an attachment comes with a presigned download URL."""
    async with conn.transaction():
        record = await _visible_record(conn, record_id, actor.user_id)
        await audit.append(conn, actor, "ehr.record.read", "record", record_id)
        if record.kind is RecordKind.attachment and store is not None:
            data = AttachmentData.model_construct(**record.data)  # validated when written
            record.download_url = await attachments.download_url(conn, store, actor, data)
    return record


async def correct_record(
    conn: asyncpg.Connection,
    actor: Actor,
    record_id: UUID,
    correction: RecordCorrection,
    store: ObjectStore | None = None,
) -> Record:
    """Its author may rewrite a record within 24 hours of signing it; later, only amend it."""
    async with conn.transaction():
        record = await _visible_record(conn, record_id, actor.user_id)
        if record.author_id != actor.user_id:
            raise Forbidden("only the record's author may correct it; amend it instead")
        if is_locked(record.created_at, datetime.now(UTC)):
            raise Conflict("the record is locked (24 hours after signing); amend it instead")
        data = validate_data(record.kind, correction.data)
        await _check_attachment(store, record.pet_id, data)
        await conn.execute(
            "UPDATE ehr_records SET data = $2::jsonb, content_sha256 = $3, updated_at = now() "
            "WHERE id = $1",
            record_id,
            data.model_dump_json(),
            content_digest(record.pet_id, record.kind, data, actor.user_id),
        )
        await audit.append(conn, actor, "ehr.record.correct", "record", record_id)
        return await _visible_record(conn, record_id, actor.user_id)


async def amend_record(
    conn: asyncpg.Connection,
    actor: Actor,
    record_id: UUID,
    new: NewAmendment,
    store: ObjectStore | None = None,
) -> Amendment:
    """A vet who sees the pet amends a record; the original stays as signed."""
    async with conn.transaction():
        record = await _visible_record(conn, record_id, actor.user_id)
        data = validate_data(record.kind, new.data)
        await _check_attachment(store, record.pet_id, data)
        row = await conn.fetchrow(
            "INSERT INTO ehr_amendments (record_id, author_id, reason, data, content_sha256) "
            "VALUES ($1, $2, $3, $4::jsonb, $5) "
            "RETURNING id, author_id, reason, data::text AS data, content_sha256, created_at",
            record_id,
            actor.user_id,
            new.reason,
            data.model_dump_json(),
            content_digest(record.pet_id, record.kind, data, actor.user_id),
        )
        await audit.append(conn, actor, "ehr.record.amend", "record", record_id)
    assert row is not None
    return Amendment(**{**dict(row), "data": json.loads(row["data"])})

"""What a health record is: its kinds and the typed data each holds, the record as signed
(author, time, SHA-256 of its content), its amendments, and the 24-hour edit window."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, Self, TypeVar
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    computed_field,
    model_validator,
)

from domain.clinical.attachments import AttachmentData
from domain.fields import NO_NUL, LongText, ShortText

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


KindT = TypeVar("KindT", bound=RecordKind)
DataT = TypeVar("DataT", bound=BaseModel)


class _NewRecord(BaseModel, Generic[KindT, DataT]):
    model_config = ConfigDict(extra="forbid")

    kind: KindT
    data: DataT


# One model per kind, so that a record's `kind` picks the model its `data` must match.
class NewNote(_NewRecord[Literal[RecordKind.note], NoteData]): ...


class NewVaccination(_NewRecord[Literal[RecordKind.vaccination], VaccinationData]): ...


class NewPrescription(_NewRecord[Literal[RecordKind.prescription], PrescriptionData]): ...


class NewWeight(_NewRecord[Literal[RecordKind.weight], WeightData]): ...


class NewAllergy(_NewRecord[Literal[RecordKind.allergy], AllergyData]): ...


class NewLab(_NewRecord[Literal[RecordKind.lab], LabData]): ...


class NewAttachment(_NewRecord[Literal[RecordKind.attachment], AttachmentData]): ...


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

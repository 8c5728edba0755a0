"""Field types shared by the domain's models: constrained text (PostgreSQL text and jsonb cannot
hold NUL, so every stored string refuses it at validation instead of failing in the database),
and `Named`, a record referred to by id and display name."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StringConstraints

NO_NUL = r"^[^\x00]*$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
LongText = Annotated[str, StringConstraints(max_length=20_000, pattern=NO_NUL)]


class Named(BaseModel):
    """A user, pet or other record as another refers to it: its id and display name."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str


def named(record_id: UUID | None, name: str | None) -> Named | None:
    """`Named` from a LEFT JOIN's columns; None when the join found nothing."""
    return None if record_id is None or name is None else Named(id=record_id, name=name)

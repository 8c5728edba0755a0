"""Constrained text types shared by the domain's models. PostgreSQL text and jsonb cannot hold
NUL, so every stored string refuses it at validation instead of failing in the database."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

NO_NUL = r"^[^\x00]*$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
LongText = Annotated[str, StringConstraints(max_length=20_000, pattern=NO_NUL)]

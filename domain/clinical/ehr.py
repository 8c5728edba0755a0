"""The health-record repository: vets write records for pets they see, correct them within 24
hours, amend them after that; nothing is ever deleted. Every read and write is audited in the same
transaction or statement as the access itself. What a record is: `domain.clinical.records`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from domain import audit
from domain.audit import Actor
from domain.clinical import attachments
from domain.clinical.attachments import AttachmentData, ObjectStore, StorageUnavailable
from domain.clinical.pets import visible_to
from domain.clinical.records import (
    Amendment,
    AnyNewRecord,
    NewAmendment,
    Record,
    RecordCorrection,
    RecordKind,
    content_digest,
    is_locked,
    validate_data,
)
from domain.errors import Conflict, Forbidden, NotFound

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

    The hottest EHR read, made for group commit (`domain.batching`): ONE statement checks
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

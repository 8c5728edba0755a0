import asyncio
from uuid import uuid4

import asyncpg
import pytest

from domain.migrate import Migration, MigrationError, apply_migrations, shipped_migrations
from tests.conftest import with_database


@pytest.fixture
async def empty_database(postgres_server_url: str):  # type: ignore[no-untyped-def]
    name = f"pawhub_migrate_{uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield with_database(postgres_server_url, name)
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


async def test_each_migration_is_applied_once_and_recorded(empty_database: str) -> None:
    conn = await asyncpg.connect(empty_database)
    versions = [m.version for m in shipped_migrations()]
    assert await apply_migrations(conn) == versions
    assert await apply_migrations(conn) == []
    recorded = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in recorded] == versions
    await conn.close()


async def test_replicas_migrating_at_once_apply_each_migration_once(empty_database: str) -> None:
    conns = [await asyncpg.connect(empty_database) for _ in range(6)]
    results = await asyncio.gather(*(apply_migrations(c) for c in conns))
    applied = [version for result in results for version in result]
    assert sorted(applied) == [m.version for m in shipped_migrations()]
    for conn in conns:
        await conn.close()


async def test_a_migration_edited_after_it_was_applied_is_refused(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await asyncpg.connect(empty_database)
    await apply_migrations(conn)
    edited = [Migration(m.version, m.sql + "\n-- edited") for m in shipped_migrations()]
    monkeypatch.setattr("domain.migrate.shipped_migrations", lambda: edited)
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply_migrations(conn)
    await conn.close()

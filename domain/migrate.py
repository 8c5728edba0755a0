"""SQL migrations: ordered files in `migrations/`, each applied once in its own transaction,
recorded with a checksum, under a PostgreSQL advisory lock so that replicas starting together
are safe.

Why our own ~60 lines rather than a tool: the well-kept migration tools (alembic, yoyo) speak
SQLAlchemy or DB-API drivers, not asyncpg, and we only need plain ordered SQL files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

import asyncpg

# Any fixed 64-bit number; it names "pawhub migrations" among the database's advisory locks.
_ADVISORY_LOCK_KEY = 0x7061776875620001


class MigrationError(RuntimeError):
    """The database's migration history does not match the files shipped with this build."""


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def shipped_migrations() -> list[Migration]:
    folder = files("domain").joinpath("migrations")
    found = [
        Migration(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda migration: migration.version)


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply every shipped migration not yet applied; return the versions applied now."""
    await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    text PRIMARY KEY,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            row["version"]: row["checksum"]
            for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        newly_applied: list[str] = []
        for migration in shipped_migrations():
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version} changed after it was applied"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version,
                    migration.checksum,
                )
            newly_applied.append(migration.version)
        return newly_applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_KEY)

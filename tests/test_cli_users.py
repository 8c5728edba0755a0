import os
import subprocess
import sys
from uuid import uuid4

import asyncpg


def pawhub(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "pawhub", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_users_create_bootstraps_staff(database_url: str, pool: asyncpg.Pool) -> None:
    email = f"mod-{uuid4().hex[:8]}@example.com"
    args = (
        "users",
        "create",
        "--email",
        email,
        "--password",
        "long enough secret",
        "--name",
        "Mo Derator",
        "--role",
        "moderator",
    )
    created = pawhub(database_url, *args)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"created moderator {email}")
    row = await pool.fetchrow("SELECT name, role, password_hash FROM users WHERE email = $1", email)
    assert row is not None
    assert (row["name"], row["role"]) == ("Mo Derator", "moderator")
    assert row["password_hash"].startswith("$argon2")

    again = pawhub(database_url, *args)
    assert again.returncode == 2
    assert again.stderr.strip() == f"pawhub: error: a user with email {email} already exists"


def test_users_create_rejects_a_short_password(database_url: str) -> None:
    result = pawhub(
        database_url,
        "users",
        "create",
        "--email",
        "a@example.com",
        "--password",
        "short",
        "--name",
        "A",
        "--role",
        "vet",
    )
    assert result.returncode == 2
    assert result.stderr.startswith("pawhub: error: password:")

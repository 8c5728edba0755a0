"""`pawhub up`'s demo clinic: seeded once, signed in with the printed passwords, a consult open
now; never with --no-demo or in production; the pages told where the API is."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from domain.identity.users import authenticate
from domain.scheduling.upcoming import upcoming_for
from pawhub.demo import DEMO_PASSWORD, DEMO_PEOPLE, seed_demo, welcome
from pawhub.settings import Environment, Settings
from pawhub.supervisor import Supervisor


async def test_the_demo_is_seeded_once_with_a_consult_open_now(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    assert settings.database_url
    now = datetime.now(UTC)
    first = await seed_demo(settings.database_url, now)
    again = await seed_demo(settings.database_url, now)
    assert again.consult_id == first.consult_id
    assert [person.id for person in again.people] == [person.id for person in first.people]
    for _role, email, _name in DEMO_PEOPLE:
        assert await authenticate(pool, email, DEMO_PASSWORD) is not None
        assert await pool.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 1
    owner = first.people[0]
    (consult,) = await upcoming_for(pool, owner.id)
    assert consult.id == first.consult_id
    assert consult.starts_at <= now < consult.ends_at
    printed = welcome(first, "http://127.0.0.1:8080")
    assert f"http://127.0.0.1:8080/app/consults/{first.consult_id}" in printed
    assert all(email in printed for _role, email, _name in DEMO_PEOPLE)


def test_no_demo_with_no_demo_or_in_production(settings: Settings) -> None:
    assert settings.database_url
    production = settings.model_copy(update={"pawhub_env": Environment.production})
    for quiet in (
        Supervisor(settings, "127.0.0.1", 8080, 8000, demo=False),
        Supervisor(production, "127.0.0.1", 8080, 8000),
    ):
        assert quiet._seed_demo(settings.database_url) is None


def test_up_tells_the_pages_where_the_api_is_unless_configured() -> None:
    bare = Settings(_env_file=None)  # type: ignore[call-arg]
    assert Supervisor(bare, "127.0.0.1", 9080, 9000)._pages_environment() == {
        "PUBLIC_API_URL": "http://127.0.0.1:9000",
        "CORS_ALLOWED_ORIGINS": "http://127.0.0.1:9080,http://localhost:9080",
    }
    configured = Settings(_env_file=None, public_api_url="https://api.example.com")  # type: ignore[call-arg]
    assert (
        "PUBLIC_API_URL" not in Supervisor(configured, "127.0.0.1", 9080, 9000)._pages_environment()
    )

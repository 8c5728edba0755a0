"""The `pawhub` command line."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from deploy.embedded import EmbeddedServerError
from domain.chat.moderation import EVIDENCE_RETENTION
from moderation.cli import moderation
from pawhub.logs import configure_logging
from pawhub.resources import (
    DatabaseUnreachable,
    connect_once,
    ensure_reachable,
    migrate_database,
)
from pawhub.settings import Settings, SettingsError, get_settings

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    click.echo(f"pawhub: error: {message}", err=True)
    sys.exit(2)


def _settings(service: str) -> Settings:
    """Settings checked for production, with logging set up for `service`."""
    try:
        settings = get_settings()
        settings.check_production()
    except SettingsError as exc:
        _fail(str(exc))
    except ValueError as exc:  # pydantic's ValidationError: a malformed variable
        _fail(str(exc).splitlines()[0] + ": " + " ".join(str(exc).splitlines()[1:3]))
    configure_logging(service, production=settings.is_production)
    return settings


def _one_line_errors(command: F) -> F:
    """Known start-up failures end with one clear line and a non-zero status, not a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (DatabaseUnreachable, EmbeddedServerError, SettingsError) as exc:
            _fail(str(exc))

    return wrapper  # type: ignore[return-value]


def _require(settings: Settings, *names: str) -> None:
    for name in names:
        if not getattr(settings, name):
            _fail(f"{name.upper()} must be set (or use `pawhub up`, which starts embedded servers)")


@click.group()
def main() -> None:
    """pawhub: the realtime tele-vet and messaging hub."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--hub-port", default=8080, show_default=True)
@click.option("--api-port", default=8000, show_default=True)
@click.option(
    "--demo/--no-demo",
    default=True,
    show_default=True,
    help="in development, seed a demo clinic (owner, vet, moderator, a consult starting now)",
)
@_one_line_errors
def up(host: str, hub_port: int, api_port: int, demo: bool) -> None:
    """Start everything: embedded services where no URL is set, migrations, hub and API."""
    from pawhub.supervisor import Supervisor

    settings = _settings("up")
    sys.exit(Supervisor(settings, host, hub_port, api_port, demo=demo).run())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@_one_line_errors
def hub(host: str, port: int) -> None:
    """Run the realtime hub alone (one replica)."""
    from pawhub.heap import settle_after_startup
    from pawhub.hub import build_hub_app
    from realtime.server import run

    settings = _settings("hub")
    _require(settings, "database_url", "redis_url")
    asyncio.run(ensure_reachable(settings.database_url or ""))
    logging.getLogger("pawhub.hub").info("hub listening on http://%s:%d", host, port)
    app = build_hub_app(settings)
    app.on_startup.append(settle_after_startup)  # after the services (cleanup_ctx) are up
    status = run(
        app,
        host,
        port,
        drain_notice_s=settings.hub_drain_notice_s,
        max_connections_per_ip=settings.max_connections_per_ip,
    )
    sys.exit(status)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@_one_line_errors
def api(host: str, port: int) -> None:
    """Run the REST API alone (one replica)."""
    import uvicorn

    from pawhub.api import create_app
    from pawhub.heap import settle_after_startup

    settings = _settings("api")
    _require(settings, "database_url", "redis_url")
    asyncio.run(ensure_reachable(settings.database_url or ""))
    app = create_app(settings)
    app.on_startup.append(settle_after_startup)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=10,
        proxy_headers=False,  # uvicorn trusts loopback's X-Forwarded-For; TRUSTED_PROXIES decides
    )


@main.command()
@_one_line_errors
def migrate() -> None:
    """Apply pending database migrations."""
    settings = _settings("cli")
    _require(settings, "database_url")
    applied = asyncio.run(migrate_database(settings.database_url or ""))
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["owner", "vet", "moderator", "admin"]), required=True)
@_one_line_errors
def users_create(email: str, password: str, name: str, role: str) -> None:
    """Create a user (the way to bootstrap staff)."""
    from pydantic import ValidationError

    from domain.identity import NewUser
    from domain.identity.users import EmailTaken, create_user

    settings = _settings("cli")
    _require(settings, "database_url")
    try:
        new_user = NewUser(email=email, password=password, name=name, role=role)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        _fail(f"{error['loc'][0]}: {error['msg']}")

    async def create() -> str:
        conn = await connect_once(settings.database_url or "")
        try:
            user = await create_user(conn, new_user)
        finally:
            await conn.close()
        return f"created {user.role.value} {user.email} ({user.id})"

    try:
        click.echo(asyncio.run(create()))
    except EmailTaken:
        _fail(f"a user with email {email} already exists")


main.add_command(moderation)


@moderation.command("worker")
@click.option("--consumer", help="consumer name in the group (default: host and pid)")
@click.option("--processes", default=1, show_default=True, help="scoring processes")
@click.option("--batch-size", default=512, show_default=True)
@click.option(
    "--reclaim-after",
    default=30.0,
    show_default=True,
    help="seconds before a dead worker's pending entries are claimed",
)
@_one_line_errors
def moderation_worker(
    consumer: str | None, processes: int, batch_size: int, reclaim_after: float
) -> None:
    """Score stored chat messages and raise flags (run as many as you need)."""
    import uvloop

    from pawhub.worker import run_worker

    settings = _settings("worker")
    _require(settings, "database_url", "redis_url")
    uvloop.run(
        run_worker(
            settings,
            consumer=consumer,
            processes=processes,
            batch_size=batch_size,
            reclaim_after=reclaim_after,
        )
    )


@moderation.command("purge")
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=EVIDENCE_RETENTION.days,
    show_default=True,
    help="days that replaced text and closed flags' evidence are kept",
)
@_one_line_errors
def moderation_purge(retention_days: int) -> None:
    """Forget chat text kept for moderators past its retention (workers do this hourly)."""
    from datetime import timedelta

    from pawhub.worker import purge_kept_text

    settings = _settings("worker")
    _require(settings, "database_url")
    purged = asyncio.run(purge_kept_text(settings, timedelta(days=retention_days)))
    click.echo(
        f"purged the evidence of {purged.evidence} closed flags"
        f" and {purged.replaced_bodies} replaced message bodies"
    )


@main.group()
def recordings() -> None:
    """Manage consult recordings."""


@recordings.command("purge")
@_one_line_errors
def recordings_purge() -> None:
    """Delete recordings' media past RECORDING_RETENTION_DAYS, leaving tombstone rows
    (recordings under legal hold are kept)."""
    from datetime import timedelta

    from pawhub.resources import open_pool, open_s3
    from recordings.retention import purge_expired

    settings = _settings("cli")
    _require(settings, "database_url")

    async def purge() -> int:
        pool = await open_pool(settings.database_url or "", min_size=1, max_size=2)
        try:
            async with open_s3(settings) as s3:
                retention = timedelta(days=settings.recording_retention_days)
                return await purge_expired(pool, s3, settings.s3_bucket, retention)
        finally:
            await pool.close()

    click.echo(f"purged {asyncio.run(purge())} recordings")


class _BenchCommands(click.Group):
    """Loads the load tester (and its plotting) only when a bench command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return ["chat", "flood"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "chat":
            from bench.chat.cli import chat

            return chat
        if cmd_name == "flood":
            from bench.flood.cli import flood

            return flood
        return None


@main.group(cls=_BenchCommands)
def bench() -> None:
    """Benchmarks: the socket load tester (`make bench` runs the standard scenarios)."""

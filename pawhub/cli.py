"""The `pawhub` command line."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from moderation.cli import moderation
from pawhub.command import fail, one_line_errors, require, service_settings
from pawhub.jobs_cli import moderation_purge, moderation_worker, recordings
from pawhub.resources import (
    connect_once,
    ensure_reachable,
    migrate_database,
)


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
@one_line_errors
def up(host: str, hub_port: int, api_port: int, demo: bool) -> None:
    """Start everything: embedded services where no URL is set, migrations, hub and API."""
    from pawhub.supervisor import Supervisor

    settings = service_settings("up")
    sys.exit(Supervisor(settings, host, hub_port, api_port, demo=demo).run())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@one_line_errors
def hub(host: str, port: int) -> None:
    """Run the realtime hub alone (one replica)."""
    from pawhub.heap import settle_after_startup
    from pawhub.hub import build_hub_app
    from realtime.server import run

    settings = service_settings("hub")
    require(settings, "database_url", "redis_url")
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
@one_line_errors
def api(host: str, port: int) -> None:
    """Run the REST API alone (one replica)."""
    import uvicorn

    from pawhub.api import create_app
    from pawhub.heap import settle_after_startup

    settings = service_settings("api")
    require(settings, "database_url", "redis_url")
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
@one_line_errors
def migrate() -> None:
    """Apply pending database migrations."""
    settings = service_settings("cli")
    require(settings, "database_url")
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
@one_line_errors
def users_create(email: str, password: str, name: str, role: str) -> None:
    """Create a user (the way to bootstrap staff)."""
    from pydantic import ValidationError

    from domain.identity import NewUser
    from domain.identity.users import EmailTaken, create_user

    settings = service_settings("cli")
    require(settings, "database_url")
    try:
        new_user = NewUser(email=email, password=password, name=name, role=role)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        fail(f"{error['loc'][0]}: {error['msg']}")

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
        fail(f"a user with email {email} already exists")


moderation.add_command(moderation_worker)
moderation.add_command(moderation_purge)
main.add_command(moderation)
main.add_command(recordings)


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

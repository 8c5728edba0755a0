"""`pawhub moderation worker|purge` and `pawhub recordings purge`: the jobs that run beside the
servers (`pawhub.cli` adds them to its groups)."""

from __future__ import annotations

import asyncio

import click

from domain.chat.moderation import EVIDENCE_RETENTION
from pawhub.command import one_line_errors, require, service_settings


@click.command("worker")
@click.option("--consumer", help="consumer name in the group (default: host and pid)")
@click.option("--processes", default=1, show_default=True, help="scoring processes")
@click.option("--batch-size", default=512, show_default=True)
@click.option(
    "--reclaim-after",
    default=30.0,
    show_default=True,
    help="seconds before a dead worker's pending entries are claimed",
)
@one_line_errors
def moderation_worker(
    consumer: str | None, processes: int, batch_size: int, reclaim_after: float
) -> None:
    """Score stored chat messages and raise flags (run as many as you need)."""
    import uvloop

    from pawhub.worker import run_worker

    settings = service_settings("worker")
    require(settings, "database_url", "redis_url")
    uvloop.run(
        run_worker(
            settings,
            consumer=consumer,
            processes=processes,
            batch_size=batch_size,
            reclaim_after=reclaim_after,
        )
    )


@click.command("purge")
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=EVIDENCE_RETENTION.days,
    show_default=True,
    help="days that replaced text and closed flags' evidence are kept",
)
@one_line_errors
def moderation_purge(retention_days: int) -> None:
    """Forget chat text kept for moderators past its retention (workers do this hourly)."""
    from datetime import timedelta

    from pawhub.worker import purge_kept_text

    settings = service_settings("worker")
    require(settings, "database_url")
    purged = asyncio.run(purge_kept_text(settings, timedelta(days=retention_days)))
    click.echo(
        f"purged the evidence of {purged.evidence} closed flags"
        f" and {purged.replaced_bodies} replaced message bodies"
    )


@click.group()
def recordings() -> None:
    """Manage consult recordings."""


@recordings.command("purge")
@one_line_errors
def recordings_purge() -> None:
    """Delete recordings' media past RECORDING_RETENTION_DAYS, leaving tombstone rows
    (recordings under legal hold are kept)."""
    from datetime import timedelta

    from pawhub.resources import open_pool, open_s3
    from recordings.retention import purge_expired

    settings = service_settings("cli")
    require(settings, "database_url")

    async def purge() -> int:
        pool = await open_pool(settings.database_url or "", min_size=1, max_size=2)
        try:
            async with open_s3(settings) as s3:
                retention = timedelta(days=settings.recording_retention_days)
                return await purge_expired(pool, s3, settings.s3_bucket, retention)
        finally:
            await pool.close()

    click.echo(f"purged {asyncio.run(purge())} recordings")

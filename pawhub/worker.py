"""Composition root of a moderation scoring worker (`pawhub moderation worker`) and of
`pawhub moderation purge`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from datetime import timedelta
from functools import partial

from domain.chat.moderation import Purged, purge_evidence
from moderation.factory import load_classifier
from moderation.pipeline import ScoringWorker
from moderation.thresholds import Thresholds
from pawhub.resources import open_pool, open_redis
from pawhub.settings import Settings


def thresholds_of(settings: Settings) -> Thresholds:
    defaults = Thresholds()
    return Thresholds(
        per_label={**defaults.per_label, **settings.moderation_thresholds},
        block_labels=frozenset(settings.moderation_block_labels),
    )


async def run_worker(
    settings: Settings,
    *,
    consumer: str | None,
    processes: int,
    batch_size: int,
    reclaim_after: float,
) -> None:
    assert settings.database_url and settings.redis_url
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pool = await open_pool(settings.database_url, min_size=1, max_size=4)
    redis = open_redis(settings.redis_url, cluster=settings.redis_cluster)
    try:
        worker = ScoringWorker(
            pool,
            redis,
            settings.redis_namespace,
            partial(load_classifier, settings.detoxify_checkpoint),
            thresholds_of(settings),
            consumer or f"{socket.gethostname()}-{os.getpid()}",
            batch_size=batch_size,
            processes=processes,
            reclaim_after=reclaim_after,
        )
        await worker.run(stop)
    finally:
        await redis.aclose()
        await pool.close()


async def purge_kept_text(settings: Settings, retention: timedelta) -> Purged:
    assert settings.database_url
    pool = await open_pool(settings.database_url, min_size=1, max_size=1)
    try:
        return await purge_evidence(pool, retention)
    finally:
        await pool.close()

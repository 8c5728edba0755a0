"""The scoring pipeline: stored chat messages, read from a Redis stream by a consumer group
(`moderation.scoring_stream`), scored in micro-batches in a process pool, flagged in PostgreSQL,
pushed to moderators live.

Scoring never touches the chat ack (the hub only appends to the stream). An entry names a
message; its text is read from PostgreSQL (an edit is scored as its own revision, a deleted
message not at all). An entry is acknowledged and deleted only after its flag, if any, is
stored, so a worker that dies mid-batch loses nothing: its pending entries are claimed by a
live worker once they have been idle for `reclaim_after`, and a revision flagged twice still
has one flag (a unique index). Messages whose entry never arrived are found by a sweep of
PostgreSQL after `sweep_after`. A message the classifier fails on is dead-lettered, not retried.
The worker also purges the text kept for moderators once its retention has passed.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import Counter, Histogram

from domain.chat.moderation import (
    EVIDENCE_RETENTION,
    MessageToScore,
    dead_letter,
    mark_moderated,
    messages_to_score,
    purge_evidence,
    raise_model_flag,
    unscored_messages,
)
from domain.redis_client import RedisClient
from moderation.classifier import Assessment, Classifier, assess
from moderation.scoring_stream import StreamConsumer, StreamEntry
from moderation.thresholds import Thresholds
from realtime.handoff import moderation_stream, publish_flag_event

log = logging.getLogger(__name__)

GROUP = "scorers"

SCORED = Counter("pawhub_moderation_scored", "Messages scored")
FLAGGED = Counter("pawhub_moderation_flagged", "Messages flagged by the model")
DEAD_LETTERED = Counter("pawhub_moderation_dead_lettered", "Messages the classifier failed on")
SWEPT = Counter("pawhub_moderation_swept", "Messages found unscored in PostgreSQL")
SEND_TO_FLAG = Histogram(
    "pawhub_moderation_send_to_flag_seconds",
    "From a message (revision) being stored to its flag being pushed",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10),
)


# The classifier lives in each pool process, built once by the initializer.
_classifier: Classifier | None = None
_PR_SET_PDEATHSIG = 1  # prctl(2)


def _build_classifier(factory: Callable[[], Classifier]) -> None:
    _end_with_the_worker()
    global _classifier
    _classifier = factory()


def _end_with_the_worker() -> None:
    """Have Linux SIGKILL this scoring process when the worker that spawned it dies. A worker
    killed outside a container (SIGKILL, the OOM killer) otherwise left its pool behind,
    idle and holding the model's memory, for ever."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _score(texts: list[str], thresholds: Thresholds) -> list[Assessment]:
    assert _classifier is not None, "the pool initializer builds the classifier"
    return assess(_classifier, texts, thresholds)


_PURGE_EVERY = 3600.0


class ScoringWorker:
    """One consumer of the stream's consumer group. Run several, in as many processes."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: RedisClient,
        prefix: str,
        classifier_factory: Callable[[], Classifier],
        thresholds: Thresholds,
        consumer: str,
        *,
        batch_size: int = 512,
        processes: int = 1,
        reclaim_after: float = 30.0,
        sweep_after: float = 120.0,
        retention: timedelta = EVIDENCE_RETENTION,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._prefix = prefix
        self._stream = StreamConsumer(
            redis,
            moderation_stream(prefix),
            GROUP,
            consumer,
            batch_size=batch_size,
            reclaim_after=reclaim_after,
        )
        self._factory = classifier_factory
        self._thresholds = thresholds
        self._consumer = consumer
        self._batch_size = batch_size
        self._processes = processes
        self._sweep_after = timedelta(seconds=sweep_after)
        self._sweep_every = min(10.0, sweep_after / 2)
        self._last_sweep = 0.0
        self._retention = retention
        self._last_purge = float("-inf")  # purge at start, then every _PURGE_EVERY

    async def run(self, stop: asyncio.Event) -> None:
        # spawn, not fork: the parent runs an event loop and holds sockets.
        with ProcessPoolExecutor(
            max_workers=self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_build_classifier,
            initargs=(self._factory,),
        ) as executor:
            await asyncio.get_running_loop().run_in_executor(
                executor, _score, ["warm up"], self._thresholds
            )
            log.info("scoring worker %s ready", self._consumer)
            backoff = 0.1
            while not stop.is_set():
                try:
                    await self._stream.ensure_group()
                    entries = await self._stream.take()
                    if entries:
                        await self._process(executor, entries)
                    await self._sweep(executor)
                    await self._purge()
                    backoff = 0.1
                except (
                    ConnectionError,
                    OSError,
                    aioredis.RedisError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ) as exc:
                    log.warning("scoring paused: %s", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)

    async def _process(self, executor: ProcessPoolExecutor, entries: list[StreamEntry]) -> None:
        messages = await messages_to_score(self._pool, {entry.message_id for entry in entries})
        await self._score(executor, messages)
        await self._stream.finish(entries)

    async def _score(self, executor: ProcessPoolExecutor, messages: list[MessageToScore]) -> None:
        if not messages:
            return
        assessments = await self._assess(executor, messages)
        scored = [message for message in messages if message.id in assessments]
        SCORED.inc(len(scored))
        for message in scored:
            if assessments[message.id].is_flagged:
                await self._flag(message, assessments[message.id])
        await mark_moderated(self._pool, scored)

    async def _assess(
        self, executor: ProcessPoolExecutor, messages: list[MessageToScore]
    ) -> dict[UUID, Assessment]:
        """Assessments by message; a message the classifier fails on is dead-lettered."""
        loop = asyncio.get_running_loop()
        try:
            assessments = await loop.run_in_executor(
                executor, _score, [message.body for message in messages], self._thresholds
            )
        except BrokenProcessPool:
            raise
        except Exception:
            log.warning("classifier failed on a batch of %d: scoring one by one", len(messages))
        else:
            return {m.id: a for m, a in zip(messages, assessments, strict=True)}
        found: dict[UUID, Assessment] = {}
        for message in messages:
            try:
                [found[message.id]] = await loop.run_in_executor(
                    executor, _score, [message.body], self._thresholds
                )
            except BrokenProcessPool:
                raise
            except Exception as exc:
                await self._dead_letter(message, exc)
        return found

    async def _dead_letter(self, message: MessageToScore, exc: Exception) -> None:
        log.error(
            "classifier failed on message %s (revision %d), dead-lettered: %r",
            message.id,
            message.revision,
            exc,
        )
        DEAD_LETTERED.inc()
        await dead_letter(self._pool, message, repr(exc))

    async def _sweep(self, executor: ProcessPoolExecutor) -> None:
        """Score messages whose stream entry never came (see `unscored_messages`)."""
        now = time.monotonic()
        if now - self._last_sweep < self._sweep_every:
            return
        lost = await unscored_messages(self._pool, self._sweep_after, self._batch_size)
        # A full batch means more are waiting (a hub died with many hand-offs): sweep again on
        # the next turn, between stream batches, not a batch per `_sweep_every`.
        self._last_sweep = now if len(lost) < self._batch_size else float("-inf")
        if lost:
            SWEPT.inc(len(lost))
            await self._score(executor, lost)
            log.info(
                "sweep: scored %d messages whose hand-off was lost in %.1f s",
                len(lost),
                time.monotonic() - now,
            )

    async def _purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < _PURGE_EVERY:
            return
        self._last_purge = now
        purged = await purge_evidence(self._pool, self._retention)
        if any(purged):
            log.info(
                "purged kept text: evidence of %d closed flags, %d replaced bodies",
                purged.evidence,
                purged.replaced_bodies,
            )

    async def _flag(self, message: MessageToScore, assessment: Assessment) -> None:
        flag = await raise_model_flag(
            self._pool,
            message.room,
            message.id,
            assessment.flagged,
            assessment.reason,
            assessment.model,
            assessment.version,
            message.revision,
        )
        if flag is None:
            return  # this revision was flagged before its entry was reclaimed
        FLAGGED.inc()
        await publish_flag_event(self._redis, self._prefix, "flag", flag.wire())
        SEND_TO_FLAG.observe(max(0.0, time.time() - message.ts.timestamp()))

"""The scoring pipeline: stored chat messages, read from a Redis stream by a consumer group,
scored in micro-batches in a process pool, flagged in PostgreSQL, pushed to moderators live.

Scoring never touches the chat ack (the hub only appends to the stream). An entry is
acknowledged only after its flag, if any, is stored, so a worker that dies mid-batch loses
nothing: its pending entries are claimed by a live worker once they have been idle for
`reclaim_after`, and a message flagged twice still has one flag (a unique index).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import Counter, Histogram
from redis.exceptions import ResponseError

from domain.moderation import raise_model_flag
from moderation.classifier import Assessment, Classifier, assess
from moderation.thresholds import Thresholds
from realtime.handoff import moderation_stream, publish_flag_event

log = logging.getLogger(__name__)

GROUP = "scorers"

SCORED = Counter("pawhub_moderation_scored", "Messages scored")
FLAGGED = Counter("pawhub_moderation_flagged", "Messages flagged by the model")
SEND_TO_FLAG = Histogram(
    "pawhub_moderation_send_to_flag_seconds",
    "From a message being stored to its flag being pushed",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10),
)


# The classifier lives in each pool process, built once by the initializer.
_classifier: Classifier | None = None


def _build_classifier(factory: Callable[[], Classifier]) -> None:
    global _classifier
    _classifier = factory()


def _score(texts: list[str], thresholds: Thresholds) -> list[Assessment]:
    assert _classifier is not None, "the pool initializer builds the classifier"
    return assess(_classifier, texts, thresholds)


@dataclass(frozen=True)
class _Entry:
    entry_id: str
    room: UUID
    message_id: UUID
    body: str
    stored_at: float

    @classmethod
    def parse(cls, entry_id: bytes, fields: dict[bytes, bytes]) -> _Entry:
        text = {key.decode(): value.decode() for key, value in fields.items()}
        return cls(
            entry_id=entry_id.decode(),
            room=UUID(text["room"]),
            message_id=UUID(text["id"]),
            body=text["body"],
            stored_at=datetime.fromisoformat(text["ts"]).timestamp(),
        )


class ScoringWorker:
    """One consumer of the stream's consumer group. Run several, in as many processes."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        prefix: str,
        classifier_factory: Callable[[], Classifier],
        thresholds: Thresholds,
        consumer: str,
        *,
        batch_size: int = 512,
        processes: int = 1,
        reclaim_after: float = 30.0,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._prefix = prefix
        self._stream = moderation_stream(prefix)
        self._factory = classifier_factory
        self._thresholds = thresholds
        self._consumer = consumer
        self._batch_size = batch_size
        self._processes = processes
        self._reclaim_after_ms = int(reclaim_after * 1000)
        self._last_reclaim = 0.0

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
                    await self._ensure_group()
                    entries = await self._reclaim() or await self._read()
                    if entries:
                        await self._process(executor, entries)
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

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self) -> list[_Entry]:
        # Our own pending entries first (a restart under the same name), then new ones.
        for start in ("0", ">"):
            response: Any = await self._redis.xreadgroup(
                GROUP,
                self._consumer,
                {self._stream: start},
                count=self._batch_size,
                block=None if start == "0" else 500,
            )
            entries = [
                _Entry.parse(entry_id, fields)
                for _, stream_entries in response or []
                for entry_id, fields in stream_entries
                if fields
            ]
            if entries:
                return entries
        return []

    async def _reclaim(self) -> list[_Entry]:
        """Entries another consumer read but never acknowledged (it died mid-batch)."""
        now = time.monotonic()
        if now - self._last_reclaim < max(1.0, self._reclaim_after_ms / 5000):
            return []
        self._last_reclaim = now
        response: Any = await self._redis.xautoclaim(
            self._stream,
            GROUP,
            self._consumer,
            self._reclaim_after_ms,
            "0-0",
            count=self._batch_size,
        )
        entries = [_Entry.parse(entry_id, fields) for entry_id, fields in response[1] if fields]
        if entries:
            log.info("reclaimed %d entries left pending by a dead worker", len(entries))
        return entries

    async def _process(self, executor: ProcessPoolExecutor, entries: list[_Entry]) -> None:
        assessments = await asyncio.get_running_loop().run_in_executor(
            executor, _score, [entry.body for entry in entries], self._thresholds
        )
        SCORED.inc(len(entries))
        for entry, assessment in zip(entries, assessments, strict=True):
            if assessment.is_flagged:
                await self._flag(entry, assessment)
        await self._redis.xack(self._stream, GROUP, *[entry.entry_id for entry in entries])

    async def _flag(self, entry: _Entry, assessment: Assessment) -> None:
        flag = await raise_model_flag(
            self._pool,
            entry.room,
            entry.message_id,
            assessment.flagged,
            assessment.reason,
            assessment.model,
            assessment.version,
        )
        if flag is None:
            return  # flagged before this entry was reclaimed
        FLAGGED.inc()
        await publish_flag_event(self._redis, self._prefix, "flag", flag.wire())
        SEND_TO_FLAG.observe(max(0.0, time.time() - entry.stored_at))

"""GroupCommit: callers that arrive while a batch is in flight share the next one, each gets
its own outcome, and a failing or cancelled caller harms no one else."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from domain.batching import GroupCommit


async def settle() -> None:
    """Let every ready task run until each waits on something."""
    for _ in range(5):
        await asyncio.sleep(0)


class Recorder:
    """A write that takes a moment (like a commit) and remembers each batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def write(self, batch: list[int]) -> Sequence[int | Exception]:
        self.batches.append(batch)
        await self.release.wait()
        return [ValueError(f"odd {n}") if n % 2 else n * 10 for n in batch]


async def test_callers_arriving_during_a_batch_share_the_next_one() -> None:
    recorder = Recorder()
    batches: GroupCommit[int, int] = GroupCommit(recorder.write, writers=1)
    first = asyncio.create_task(batches.submit(0))
    await settle()
    rest = [asyncio.create_task(batches.submit(n)) for n in range(1, 7)]
    await settle()
    recorder.release.set()
    assert await first == 0
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert recorder.batches == [[0], [1, 2, 3, 4, 5, 6]]
    assert [o if isinstance(o, int) else str(o) for o in outcomes] == [
        "odd 1",
        20,
        "odd 3",
        40,
        "odd 5",
        60,
    ]


@pytest.mark.parametrize("writers", [1, 2])
@pytest.mark.parametrize("linger_s, batches_written", [(0.0, [[0], [2]]), (0.2, [[0, 2]])])
async def test_a_lingering_writer_takes_calls_made_while_it_waits(
    writers: int, linger_s: float, batches_written: list[list[int]]
) -> None:
    """And no second writer starts meanwhile, to linger and then write nothing."""
    recorder = Recorder()
    recorder.release.set()  # writes return at once: only the linger can join the two calls
    batches: GroupCommit[int, int] = GroupCommit(recorder.write, writers=writers, linger_s=linger_s)
    first = asyncio.create_task(batches.submit(0))
    await settle()
    assert await asyncio.gather(first, batches.submit(2)) == [0, 20]
    await settle()
    assert recorder.batches == batches_written


async def test_a_batch_that_fills_up_ends_the_linger() -> None:
    recorder = Recorder()
    recorder.release.set()
    batches: GroupCommit[int, int] = GroupCommit(
        recorder.write, max_batch=2, writers=1, linger_s=3600
    )
    first = asyncio.create_task(batches.submit(0))
    await settle()  # its writer lingers
    async with asyncio.timeout(5):  # a linger would last the hour
        assert await asyncio.gather(first, batches.submit(2)) == [0, 20]
    assert recorder.batches == [[0, 2]]


async def test_batches_are_capped_and_writers_work_side_by_side() -> None:
    recorder = Recorder()
    batches: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=3, writers=2)
    calls = [asyncio.create_task(batches.submit(n * 2)) for n in range(8)]
    await settle()
    assert len(recorder.batches) == 2  # two writers in flight, the rest waiting
    recorder.release.set()
    assert await asyncio.gather(*calls) == [n * 20 for n in range(8)]
    assert sorted(n for batch in recorder.batches for n in batch) == [n * 2 for n in range(8)]
    assert all(len(batch) <= 3 for batch in recorder.batches)


async def test_a_failed_write_fails_its_batch_only_and_later_calls_still_run() -> None:
    attempts = 0

    async def flaky(batch: list[int]) -> Sequence[int | Exception]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database went away")
        return batch

    batches: GroupCommit[int, int] = GroupCommit(flaky)
    with pytest.raises(ConnectionError):
        await batches.submit(1)
    assert await batches.submit(2) == 2


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    recorder = Recorder()
    batches: GroupCommit[int, int] = GroupCommit(recorder.write, writers=1)
    blocker = asyncio.create_task(batches.submit(0))
    await settle()
    leaver, stayer = (asyncio.create_task(batches.submit(n)) for n in (2, 4))
    await settle()
    leaver.cancel()
    recorder.release.set()
    assert (await blocker, await stayer) == (0, 40)
    assert leaver.cancelled()


async def test_a_call_made_as_its_answer_arrives_is_written_too() -> None:
    """A caller woken by its outcome submits again before the finished writer's task is done:
    the writer must no longer count, or the new call waits for a writer that never comes."""

    async def write(batch: list[int]) -> Sequence[int | Exception]:
        return [n + 1 for n in batch]

    batches: GroupCommit[int, int] = GroupCommit(write, writers=1)
    number = 0
    async with asyncio.timeout(2.0):  # not wait_for: its task would let the writer finish
        for _ in range(20):
            number = await batches.submit(number)
    assert number == 20

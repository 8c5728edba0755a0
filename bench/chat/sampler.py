"""CPU and RSS of groups of processes (the servers, the tester's workers), once a second."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import psutil


@dataclass
class GroupSamples:
    seconds: list[float] = field(default_factory=list)  # time.monotonic() of each sample
    cpu_percent: list[float] = field(default_factory=list)  # summed over the group's processes
    rss_bytes: list[int] = field(default_factory=list)


class ProcessSampler:
    def __init__(self, every_s: float = 1.0) -> None:
        self._every_s = every_s
        self._groups: dict[str, list[psutil.Process]] = {}
        self.samples: dict[str, GroupSamples] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, group: str, pids: list[int]) -> None:
        processes = [psutil.Process(pid) for pid in pids]
        for process in processes:
            process.cpu_percent()  # the first call only sets the reference point
        self._groups.setdefault(group, []).extend(processes)
        self.samples.setdefault(group, GroupSamples())

    def rss(self, group: str) -> int:
        return sum(_safe_rss(process) for process in self._groups.get(group, []))

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            now = time.monotonic()
            for group, processes in self._groups.items():
                samples = self.samples[group]
                samples.seconds.append(now)
                samples.cpu_percent.append(sum(_safe_cpu(process) for process in processes))
                samples.rss_bytes.append(sum(_safe_rss(process) for process in processes))


def _safe_cpu(process: psutil.Process) -> float:
    try:
        return process.cpu_percent()
    except psutil.Error:
        return 0.0


def _safe_rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0

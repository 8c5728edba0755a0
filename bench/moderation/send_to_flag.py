"""Send -> flag on the moderator's dashboard, under chat load (issue 7's target: p99 <= 500 ms
at 1,000 messages/s).

Starts a real hub and a real scoring worker (`pawhub hub`, `pawhub moderation worker`) against
DATABASE_URL / REDIS_URL (embedded servers when unset), creates users and rooms, and drives
`--rate` messages/s open-loop from `--senders` sockets for `--duration` s, one in `--toxic-every`
of them abusive. A moderator socket subscribed to `/moderation` stamps each `flag`; latency is
flag arrival minus the sender's clock just before `send` (same machine, same clock).

    python -m bench.moderation.send_to_flag --rate 1000 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from uuid import uuid4

import asyncpg
import socketio

from deploy.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from domain.chat.conversations import create_conversation
from domain.identity import NewUser, Role
from domain.identity.tokens import issue_access_token
from domain.identity.users import create_user
from pawhub.resources import migrate_database
from pawhub.settings import Settings

ABUSE = "f4ck you, you useless quack"
CLINICAL = "Rex vomited twice this morning, should we bring him in?"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_healthy(url: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never became healthy")


async def run(args: argparse.Namespace) -> dict[str, object]:
    data_dir = Path(".pawhub-bench")
    services = []
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database_url:
        services.append(EmbeddedPostgres(data_dir).start())
        database_url = services[-1].url
    if not redis_url:
        services.append(EmbeddedRedis(data_dir).start())
        redis_url = services[-1].url
    await migrate_database(database_url)
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        redis_url=redis_url,  # type: ignore[call-arg]
        redis_namespace=f"bench-{uuid4().hex[:8]}",
    )
    env = {**settings.child_environment(), "CHAT_RATE_LIMIT": "0"}
    port = free_port()
    processes = [
        subprocess.Popen([sys.executable, "-m", "pawhub", "hub", "--port", str(port)], env=env),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pawhub",
                "moderation",
                "worker",
                "--processes",
                str(args.worker_processes),
            ],
            env=env,
        ),
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url)
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        assert pool is not None
        suffix = uuid4().hex[:8]
        senders, rooms = [], []
        moderator = await create_user(
            pool,
            NewUser(
                email=f"mod-{suffix}@example.com",
                password="bench password",
                name="Mod",
                role=Role.moderator,
            ),
        )
        for i in range(args.senders):
            user = await create_user(
                pool,
                NewUser(
                    email=f"s{i}-{suffix}@example.com", password="bench password", name=f"S{i}"
                ),
            )
            async with pool.acquire() as conn:
                rooms.append((await create_conversation(conn, user.id, [], None)).id)
            senders.append(issue_access_token(user, settings.jwt_secret))
        await pool.close()

        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        flagged = asyncio.Event()
        mod = socketio.AsyncClient()

        async def on_flag(flag: dict[str, object]) -> None:
            message = flag["message"]
            assert isinstance(message, dict)
            started = sent_at.get(str(message["client_id"]))
            if started is not None:
                latencies.append(time.time() - started)
                if len(latencies) == expected:
                    flagged.set()

        mod.on("flag", on_flag, namespace="/moderation")
        await mod.connect(
            url,
            auth={"token": issue_access_token(moderator, settings.jwt_secret)},
            namespaces=["/moderation"],
            transports=["websocket"],
        )
        await mod.call("subscribe", {}, namespace="/moderation")
        clients = []
        for token, room in zip(senders, rooms, strict=True):
            client = socketio.AsyncClient()
            await client.connect(
                url, auth={"token": token}, namespaces=["/chat"], transports=["websocket"]
            )
            await client.call("join", {"room": str(room)}, namespace="/chat")
            clients.append((client, room))

        total = int(args.rate * args.duration)
        expected = len(range(0, total, args.toxic_every))
        interval = 1 / args.rate
        start = time.perf_counter()
        pending = []
        for n in range(total):
            # Open loop: each send leaves on its own schedule, whatever the acks do.
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            client, room = clients[n % len(clients)]
            client_id = f"m{n}"
            toxic = n % args.toxic_every == 0
            if toxic:
                sent_at[client_id] = time.time()
            pending.append(
                asyncio.create_task(
                    client.call(
                        "send",
                        {
                            "room": str(room),
                            "client_id": client_id,
                            "body": ABUSE if toxic else CLINICAL,
                        },
                        namespace="/chat",
                        timeout=30,
                    )
                )
            )
        acks = await asyncio.gather(*pending)
        achieved = total / (time.perf_counter() - start)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(flagged.wait(), 60)
        for client, _ in clients:
            await client.disconnect()
        await mod.disconnect()
        return {
            "offered_rate": args.rate,
            "achieved_send_rate": round(achieved),
            "messages": total,
            "acked_ok": sum(1 for ack in acks if ack["ok"]),
            "toxic": expected,
            "flags_seen": len(latencies),
            "send_to_flag_ms": {
                name: round(1000 * percentile(latencies, q), 1)
                for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
            }
            if latencies
            else {},
        }
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        for service in services:
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000, help="messages/s offered")
    parser.add_argument("--duration", type=float, default=20, help="seconds of sending")
    parser.add_argument("--senders", type=int, default=20, help="sockets, one room each")
    parser.add_argument("--toxic-every", type=int, default=10, help="one abusive message in N")
    parser.add_argument("--worker-processes", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()

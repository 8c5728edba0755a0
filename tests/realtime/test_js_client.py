"""Interoperability: the official JavaScript socket.io-client against the hub's /chat."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from tests.recording_client import ChatClient

JS = Path(__file__).parents[1] / "js"


async def test_the_official_js_client_connects_sends_reconnects_and_recovers(
    chat_url: str, room: Any
) -> None:
    room_id, owner, vet = room
    assert (JS / "node_modules" / "socket.io-client").is_dir(), "make test installs it"
    node = shutil.which("node")
    assert node is not None
    bob = await ChatClient.connect(chat_url, vet[1])
    await bob.call("join", {"room": str(room_id)})
    js = await asyncio.create_subprocess_exec(
        node,
        str(JS / "interop.mjs"),
        chat_url,
        owner[1],
        str(room_id),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert js.stdin is not None and js.stdout is not None

    async def step(name: str) -> dict[str, Any]:
        line = await asyncio.wait_for(js.stdout.readline(), 20)
        assert line, f"the JS client stopped before {name}"
        data: dict[str, Any] = json.loads(line)
        assert data.pop("step") == name
        return data

    try:
        assert (await step("connected"))["transport"] in ("polling", "websocket")
        assert await step("joined") == {"ok": True, "last_seq": 0}
        assert await step("sent") == {"ok": True, "seq": 1, "echoed": True}
        [from_js] = await bob.wait_for("message", 1)
        assert from_js["body"] == "hello from js"

        assert await step("offline") == {"last_seen": 1}
        for i in range(3):
            await bob.call(
                "send", {"room": str(room_id), "client_id": f"b{i}", "body": f"while away {i}"}
            )
        js.stdin.write(b"go\n")
        assert await step("recovered") == {
            "ok": True,
            "has_more": False,
            "missed": [[2, "while away 0"], [3, "while away 1"], [4, "while away 2"]],
        }
        await bob.call("send", {"room": str(room_id), "client_id": "live", "body": "live"})
        js.stdin.write(b"go\n")
        assert await step("live") == {"seqs": [1, 5], "transport": "websocket"}
        assert await asyncio.wait_for(js.wait(), 10) == 0
    finally:
        if js.returncode is None:
            js.kill()
        await bob.close()

"""A consult's VideoRoom on Janus (media.janus): created with a secret (needed to destroy it,
change who may join or record it) and, if Janus has one, the admin key; joined only with the
tokens allowed in it."""

from __future__ import annotations

import secrets
from pathlib import Path

from media.janus import JanusError, JanusHandle

ROOM_EXISTS = 427  # the VideoRoom plugin's JANUS_VIDEOROOM_ERROR_ROOM_EXISTS
MAX_VIDEO_BPS = 1_500_000  # as the embedded SFU's b=AS cap: there is no simulcast here either


class JanusRoom:
    """A consult's VideoRoom: exists from `create` to `destroy`, joined only with its tokens."""

    def __init__(
        self,
        control: JanusHandle,
        room_id: str,
        secret: str | None = None,
        admin_key: str | None = None,
    ) -> None:
        self._control = control
        self.id = room_id
        self._secret = secret or secrets.token_urlsafe(24)
        self._admin_key = admin_key  # the VideoRoom's `admin_key`, needed to create rooms

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(24)

    async def create(self, tokens: list[str], max_publishers: int) -> None:
        create = {"request": "create", "room": self.id, "secret": self._secret,
                  "allowed": tokens, "is_private": True, "publishers": max_publishers,
                  "videocodec": "vp8", "audiocodec": "opus", "bitrate": MAX_VIDEO_BPS,
                  "bitrate_cap": True, "permanent": False, "lock_record": True}  # fmt: skip
        if self._admin_key:
            create["admin_key"] = self._admin_key
        await self._control.request(create)

    async def allow(self, token: str) -> None:
        await self._control.request(
            {"request": "allowed", "room": self.id, "secret": self._secret, "action": "add",
             "allowed": [token]}
        )  # fmt: skip

    async def destroy(self) -> None:
        await self._control.request({"request": "destroy", "room": self.id, "secret": self._secret})

    async def record(self, on: bool, directory: Path) -> None:
        """Record every publisher's streams, present and to come, as .mjr files in `directory`
        (a path Janus can write), or stop: Janus closes the files."""
        if on:
            await self._control.request(
                {"request": "edit", "room": self.id, "secret": self._secret,
                 "new_rec_dir": str(directory)}
            )  # fmt: skip
        await self._control.request(
            {"request": "enable_recording", "room": self.id, "secret": self._secret, "record": on}
        )

    async def replace(self, tokens: list[str], max_publishers: int) -> None:
        """Create the room, destroying first one of the same id and secret that outlived its
        creator (a hub replica that died without destroying it)."""
        try:
            await self.create(tokens, max_publishers)
        except JanusError as error:
            if error.code != ROOM_EXISTS:
                raise
            await self.destroy()
            await self.create(tokens, max_publishers)

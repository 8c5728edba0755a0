"""Changing a sent message: its sender edits it under the posting rules, or it is deleted by
redaction. The seq stays; every body a change replaces is kept for moderators (see
`message_revisions` and `domain.chat.moderation`)."""

from __future__ import annotations

from uuid import UUID

from domain.chat.errors import MessageNotFound, NotYourMessage, TooManyEdits
from domain.chat.messages import Message, get_message
from domain.chat.posting import check_member, may_post
from domain.db import Db
from domain.identity import Role
from domain.identity.tokens import Principal

# Each edit keeps the body it replaces for moderators: this bounds what one message can hold.
MAX_EDITS = 10


async def edit_message(conn: Db, room: UUID, message_id: UUID, editor: UUID, body: str) -> Message:
    """Replace the body of the editor's own message under the send rules (a member, not muted);
    the seq stays, edited_at is set, the revision counts up and the replaced body is kept for
    moderators (see `message_revisions`), in one statement.
    """
    row = await conn.fetchrow(
        f"""WITH old AS (
                SELECT id, revision, body FROM messages
                 WHERE room = $1 AND id = $2 AND sender_id = $3 AND deleted_at IS NULL
                   AND revision < $5 AND {may_post("$1", "$3")}
                 FOR UPDATE),
            _kept AS (
                INSERT INTO message_revisions (message_id, revision, body, replaced_by)
                SELECT id, revision, body, 'edit' FROM old)
            UPDATE messages m SET body = $4, edited_at = now(), revision = old.revision + 1
              FROM old WHERE m.id = old.id
        RETURNING m.id""",
        room,
        message_id,
        editor,
        body,
        MAX_EDITS,
    )
    if row is None:
        await _explain_refused_edit(conn, room, message_id, editor)
        # A mute that expired between the two statements: nothing stands in the way now.
        return await edit_message(conn, room, message_id, editor, body)
    return await get_message(conn, room, message_id)


async def _explain_refused_edit(conn: Db, room: UUID, message_id: UUID, editor: UUID) -> None:
    await check_member(conn, room, editor, posting=True)
    row = await conn.fetchrow(
        "SELECT sender_id, deleted_at, revision FROM messages WHERE room = $1 AND id = $2",
        room,
        message_id,
    )
    if row is None or row["deleted_at"] is not None:
        raise MessageNotFound()
    if row["sender_id"] != editor:
        raise NotYourMessage("only the sender edits a message")
    if row["revision"] >= MAX_EDITS:
        raise TooManyEdits(MAX_EDITS)


async def redact_message(conn: Db, room: UUID, message_id: UUID, actor: Principal) -> Message:
    """Delete a message by redaction: the body is gone from what members see; the seq stays,
    and the body is kept for moderators like an edited one (see `message_revisions`).

    The sender may delete their own message; a moderator or an admin may delete any.
    Deleting a deleted message is a no-op that returns it.
    """
    may_delete_any = actor.role in (Role.moderator, Role.admin)
    row = await conn.fetchrow(
        """WITH old AS (
                SELECT id, revision, body, deleted_at FROM messages
                 WHERE room = $1 AND id = $2 AND (sender_id = $3 OR $4)
                 FOR UPDATE),
            _kept AS (
                INSERT INTO message_revisions (message_id, revision, body, replaced_by)
                SELECT id, revision, body, 'delete' FROM old WHERE deleted_at IS NULL)
            UPDATE messages m SET body = '', deleted_at = coalesce(m.deleted_at, now())
              FROM old WHERE m.id = old.id
        RETURNING m.id""",
        room,
        message_id,
        actor.user_id,
        may_delete_any,
    )
    if row is None:  # someone else's message: say so only while members can see it
        if (await get_message(conn, room, message_id)).deleted:
            raise MessageNotFound()
        raise NotYourMessage("only the sender or a moderator deletes a message")
    return await get_message(conn, room, message_id)

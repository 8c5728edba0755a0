-- Chat messages. `seq` numbers a room's messages 1, 2, 3 ... (see conversations.last_seq);
-- a delete is a redaction: the body is gone, the row and its seq stay.
CREATE TABLE messages (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    room       uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq        bigint NOT NULL CHECK (seq > 0),
    client_id  text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 100),
    sender_id  uuid NOT NULL REFERENCES users (id),
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    edited_at  timestamptz,
    deleted_at timestamptz,
    CONSTRAINT messages_room_seq_key UNIQUE (room, seq),
    CONSTRAINT messages_idempotency_key UNIQUE (room, sender_id, client_id),
    CONSTRAINT messages_redacted CHECK (deleted_at IS NULL OR body = '')
);

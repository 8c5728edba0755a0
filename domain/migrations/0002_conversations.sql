-- Conversations: every chat room is one (a consult's room too). `last_seq` numbers the room's
-- messages 1, 2, 3 ... : it is advanced in the same transaction that stores a message, so a
-- rolled-back send leaves no gap.
CREATE TABLE conversations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title      text CHECK (title IS NULL OR length(title) <= 200),
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seq   bigint NOT NULL DEFAULT 0
);

CREATE TABLE conversation_members (
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id),
    last_read_seq   bigint NOT NULL DEFAULT 0,
    joined_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user_idx ON conversation_members (user_id);

-- Moderators' claims on flags, so two never act on the same flag unknowingly. A claim lapses at
-- `until` (renewed by claiming again), or once its moderator has no live /moderation connection
-- on any hub replica: `moderation_connections` is a lease each replica renews for its own.

CREATE TABLE flag_claims (
    flag_id      uuid PRIMARY KEY REFERENCES flags (id) ON DELETE CASCADE,
    moderator_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    until        timestamptz NOT NULL
);
CREATE INDEX flag_claims_moderator_idx ON flag_claims (moderator_id);
CREATE INDEX flag_claims_until_idx ON flag_claims (until);

CREATE TABLE moderation_connections (
    replica      text NOT NULL CHECK (length(replica) <= 64),
    connection   text NOT NULL CHECK (length(connection) <= 64),
    moderator_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    live_until   timestamptz NOT NULL,
    PRIMARY KEY (replica, connection)
);
CREATE INDEX moderation_connections_moderator_idx ON moderation_connections (moderator_id);

-- An action taken on a flag another moderator had claimed names whom it was taken from.
ALTER TABLE moderation_actions ADD COLUMN took_over_from uuid REFERENCES users (id);
-- A sender's moderation history is read by sender, newest first: flags name the sender of their
-- message (messages have no index by sender, and chat's hot path should not pay for one).
ALTER TABLE flags ADD COLUMN sender_id uuid REFERENCES users (id);
UPDATE flags f SET sender_id = m.sender_id FROM messages m WHERE m.id = f.message_id;
ALTER TABLE flags ALTER COLUMN sender_id SET NOT NULL;
CREATE INDEX flags_sender_idx ON flags (sender_id, created_at DESC);

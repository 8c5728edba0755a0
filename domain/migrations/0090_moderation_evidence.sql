-- Moderation evidence: a flag keeps the text it was raised on; edits and deletes keep the text
-- they replaced, for moderators only, until a retention period after the message's flags close;
-- and every revision of a message is scored, even when its stream entry was lost.

-- `revision` counts a message's edits (0 = as sent). `moderated_revision` is the revision the
-- moderation pipeline last scored (or dead-lettered); NULL: never. Rows stored before this
-- migration count as moderated: a default given with ADD COLUMN is kept for the existing rows
-- without rewriting the table, and new rows get none once it is dropped.
ALTER TABLE messages
    ADD COLUMN revision integer NOT NULL DEFAULT 0 CHECK (revision >= 0),
    ADD COLUMN moderated_revision integer DEFAULT 0;
ALTER TABLE messages ALTER COLUMN moderated_revision DROP DEFAULT;
-- Small: only the messages waiting to be scored, which the worker's sweep looks for.
CREATE INDEX messages_unmoderated_idx ON messages (created_at)
    WHERE moderated_revision IS DISTINCT FROM revision AND deleted_at IS NULL;

-- The bodies a message had before each edit and before its delete (at most one per revision).
CREATE TABLE message_revisions (
    message_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    revision    integer NOT NULL,
    body        text NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now(),
    replaced_by text NOT NULL CHECK (replaced_by IN ('edit', 'delete')),
    PRIMARY KEY (message_id, revision)
);
CREATE INDEX message_revisions_replaced_at_idx ON message_revisions (replaced_at);

-- `evidence`: the text the flag was raised on (NULL once purged); `revision`: which revision.
ALTER TABLE flags
    ADD COLUMN revision integer NOT NULL DEFAULT 0,
    ADD COLUMN evidence text;
UPDATE flags f SET evidence = m.body FROM messages m WHERE m.id = f.message_id AND m.body <> '';
-- An edited message is scored again: one model flag per revision, not per message.
DROP INDEX flags_one_model_flag_per_message;
CREATE UNIQUE INDEX flags_one_model_flag_per_revision ON flags (message_id, revision)
    WHERE source = 'model';
CREATE INDEX flags_message_idx ON flags (message_id);

-- Messages the classifier failed on: scored no further, kept for a person to look at.
CREATE TABLE moderation_dead_letters (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    revision   integer NOT NULL,
    error      text NOT NULL CHECK (length(error) <= 1000),
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, revision)
);

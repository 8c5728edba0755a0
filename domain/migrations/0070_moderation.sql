-- Live moderation: flags raised by the model or by users, what moderators did about them,
-- and the mutes and bans those actions leave behind.
CREATE TABLE flags (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    room          uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id    uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    source        text NOT NULL CHECK (source IN ('model', 'report')),
    labels        jsonb NOT NULL DEFAULT '{}',
    reason        text NOT NULL CHECK (length(reason) <= 1000),
    model         text,
    model_version text,
    reporter_id   uuid REFERENCES users (id),
    status        text NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'dismissed', 'actioned', 'escalated')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((source = 'model') = (model IS NOT NULL)),
    CHECK ((source = 'report') = (reporter_id IS NOT NULL))
);
-- Scoring the same message again (a reclaimed stream entry) never raises a second flag.
CREATE UNIQUE INDEX flags_one_model_flag_per_message ON flags (message_id) WHERE source = 'model';
CREATE INDEX flags_status_idx ON flags (status, created_at DESC);
CREATE INDEX flags_room_idx ON flags (room);

CREATE TABLE moderation_actions (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    flag_id    uuid NOT NULL REFERENCES flags (id) ON DELETE CASCADE,
    actor_id   uuid NOT NULL REFERENCES users (id),
    action     text NOT NULL CHECK (action IN ('dismiss', 'delete', 'mute', 'ban', 'escalate')),
    reason     text CHECK (length(reason) <= 1000),
    duration_s integer CHECK (duration_s > 0),
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX moderation_actions_flag_idx ON moderation_actions (flag_id, at);

CREATE TABLE room_mutes (
    room     uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id),
    until    timestamptz NOT NULL,
    PRIMARY KEY (room, user_id)
);

CREATE TABLE room_bans (
    room      uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES users (id),
    banned_by uuid NOT NULL REFERENCES users (id),
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room, user_id)
);

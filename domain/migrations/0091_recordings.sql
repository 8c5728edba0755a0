-- Consult recordings: the consent ledger, one row per recording with its state changes, and
-- the segments uploaded to S3.

-- Every consent given or withdrawn, as it was given: the database refuses to rewrite it.
CREATE TABLE consent_ledger (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    consult_id     uuid NOT NULL REFERENCES consults (id),
    user_id        uuid NOT NULL REFERENCES users (id),
    granted        boolean NOT NULL,
    notice_version text NOT NULL,
    ip             text,
    user_agent     text
);
CREATE INDEX consent_ledger_consult_idx ON consent_ledger (consult_id, user_id, id);
CREATE TRIGGER consent_ledger_append_only BEFORE UPDATE OR DELETE ON consent_ledger
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON consent_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();

CREATE TABLE recordings (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    consult_id  uuid NOT NULL REFERENCES consults (id),
    state       text NOT NULL
                    CHECK (state IN ('recording', 'paused', 'stopped', 'interrupted', 'failed')),
    started_by  uuid NOT NULL REFERENCES users (id),
    stopped_by  uuid REFERENCES users (id),
    started_at  timestamptz NOT NULL DEFAULT now(),
    stopped_at  timestamptz,
    -- Seconds spent recording (not paused), summed as each stretch ends.
    duration_s  double precision NOT NULL DEFAULT 0,
    resumed_at  timestamptz DEFAULT now(),
    legal_hold  boolean NOT NULL DEFAULT false,
    purged_at   timestamptz
);
CREATE INDEX recordings_consult_idx ON recordings (consult_id, started_at);
-- At most one recording of a consult is live (recording or paused) at a time.
CREATE UNIQUE INDEX recordings_one_live ON recordings (consult_id)
    WHERE state IN ('recording', 'paused');

-- Every state change of a recording: who or what caused it, and when.
CREATE TABLE recording_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recording_id uuid NOT NULL REFERENCES recordings (id),
    at           timestamptz NOT NULL DEFAULT now(),
    state        text NOT NULL,
    actor_id     uuid REFERENCES users (id),
    reason       text NOT NULL
);
CREATE INDEX recording_events_recording_idx ON recording_events (recording_id, id);
CREATE TRIGGER recording_events_append_only BEFORE UPDATE OR DELETE ON recording_events
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();

-- A closed segment of one participant's media, and where it is in S3.
CREATE TABLE recording_segments (
    recording_id uuid NOT NULL REFERENCES recordings (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    seq          integer NOT NULL CHECK (seq >= 0),
    object_key   text NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
    sha256       text NOT NULL,
    duration_s   double precision NOT NULL,
    uploaded_at  timestamptz,
    PRIMARY KEY (recording_id, user_id, seq)
);

-- What a finished recording's download gives: one joined WebM per participant.
CREATE TABLE recording_files (
    recording_id uuid NOT NULL REFERENCES recordings (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    object_key   text NOT NULL,
    content_type text NOT NULL,
    duration_s   double precision NOT NULL,
    PRIMARY KEY (recording_id, user_id)
);

-- A LiveKit call's recording: one participant egress per person for each stretch it records
-- (egress cannot pause, so a pause ends them and a resume starts new ones). LiveKit writes each
-- file to S3 itself; its egress_ended webhook completes the row.
CREATE TABLE recording_egresses (
    egress_id    text PRIMARY KEY,
    recording_id uuid NOT NULL REFERENCES recordings (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    object_key   text NOT NULL,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'complete', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    -- The hub asked LiveKit to stop it (a pause or a stop); LiveKit's webhook ends it.
    stop_asked_at timestamptz,
    ended_at     timestamptz,
    size_bytes   bigint CHECK (size_bytes >= 0),
    duration_s   double precision,
    error        text
);
CREATE INDEX recording_egresses_recording_idx ON recording_egresses (recording_id, started_at);

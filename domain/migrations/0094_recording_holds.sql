-- Every legal hold placed on a recording or released, with the admin and the reason: the
-- database refuses to rewrite it. `recordings.legal_hold` is the hold as it stands.
CREATE TABLE recording_holds (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recording_id uuid NOT NULL REFERENCES recordings (id),
    at           timestamptz NOT NULL DEFAULT now(),
    held         boolean NOT NULL,
    actor_id     uuid NOT NULL REFERENCES users (id),
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500)
);
CREATE INDEX recording_holds_recording_idx ON recording_holds (recording_id, id);
CREATE TRIGGER recording_holds_append_only BEFORE UPDATE OR DELETE ON recording_holds
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER recording_holds_no_truncate BEFORE TRUNCATE ON recording_holds
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();

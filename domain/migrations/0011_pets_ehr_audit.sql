-- Pets, their health records (EHR) and the append-only audit log.
CREATE TABLE pets (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id   uuid NOT NULL REFERENCES users (id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    species    text NOT NULL CHECK (length(species) BETWEEN 1 AND 50),
    breed      text CHECK (breed IS NULL OR length(breed) <= 100),
    sex        text CHECK (sex IN ('male', 'female', 'unknown')),
    birth_date date,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pets_owner_idx ON pets (owner_id, created_at);

-- A record is signed by its author at creation (author_id, created_at, content_sha256).
CREATE TABLE ehr_records (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pet_id         uuid NOT NULL REFERENCES pets (id),
    kind           text NOT NULL CHECK (kind IN
                       ('note', 'vaccination', 'prescription', 'weight', 'allergy', 'lab', 'attachment')),
    data           jsonb NOT NULL,
    author_id      uuid NOT NULL REFERENCES users (id),
    content_sha256 text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz
);
CREATE INDEX ehr_records_pet_idx ON ehr_records (pet_id, created_at);

-- After 24 hours a record changes only through amendments, which keep the original.
CREATE TABLE ehr_amendments (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    record_id      uuid NOT NULL REFERENCES ehr_records (id),
    author_id      uuid NOT NULL REFERENCES users (id),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    data           jsonb NOT NULL,
    content_sha256 text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ehr_amendments_record_idx ON ehr_amendments (record_id, created_at);

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid,
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   uuid NOT NULL,
    ip          text,
    user_agent  text
);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, at);

-- The database itself refuses to rewrite history, whatever the application does.
CREATE FUNCTION refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER ehr_amendments_append_only BEFORE UPDATE OR DELETE ON ehr_amendments
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER ehr_records_never_deleted BEFORE DELETE ON ehr_records
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();

CREATE FUNCTION ehr_records_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.created_at <= now() - interval '24 hours'
       AND (NEW.data, NEW.kind, NEW.pet_id, NEW.author_id)
           IS DISTINCT FROM (OLD.data, OLD.kind, OLD.pet_id, OLD.author_id) THEN
        RAISE EXCEPTION 'EHR record % is locked; amend it instead', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER ehr_records_locked_after_24h BEFORE UPDATE ON ehr_records
    FOR EACH ROW EXECUTE FUNCTION ehr_records_lock();

-- A record as the API shows it: its amendments, oldest first, inside it.
CREATE VIEW ehr_record_view AS
SELECT r.id, r.pet_id, r.kind, r.data, r.author_id, r.content_sha256, r.created_at, r.updated_at,
       COALESCE((SELECT json_agg(json_build_object(
                            'id', a.id, 'author_id', a.author_id, 'reason', a.reason,
                            'data', a.data, 'content_sha256', a.content_sha256,
                            'created_at', a.created_at) ORDER BY a.created_at, a.id)
                   FROM ehr_amendments a WHERE a.record_id = r.id), '[]'::json) AS amendments
  FROM ehr_records r;

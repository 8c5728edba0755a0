-- Vets' availability, bookings that can never overlap, and the consults video bookings open.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- One row per vet: weekly windows in the vet's own IANA zone plus dated exceptions (JSON lists
-- validated by domain/availability.py), and the buffer kept free after each booking.
CREATE TABLE vet_availability (
    vet_id     uuid PRIMARY KEY REFERENCES users (id),
    time_zone  text NOT NULL,
    buffer_min integer NOT NULL CHECK (buffer_min BETWEEN 0 AND 120),
    weekly     jsonb NOT NULL,
    exceptions jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bookings (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vet_id     uuid NOT NULL REFERENCES users (id),
    owner_id   uuid NOT NULL REFERENCES users (id),
    pet_id     uuid NOT NULL REFERENCES pets (id),
    kind       text NOT NULL CHECK (kind IN ('video', 'in_person')),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    -- What the booking keeps the vet from: the consult and the buffer after it.
    blocked    tstzrange NOT NULL CHECK (lower(blocked) = starts_at AND upper(blocked) >= ends_at),
    status     text NOT NULL CHECK (status IN ('requested', 'confirmed', 'cancelled', 'completed', 'no_show')),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Two live bookings of one vet never overlap, however many requests race for a slot.
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (vet_id WITH =, blocked WITH &&)
        WHERE (status IN ('requested', 'confirmed'))
);
CREATE INDEX bookings_pet_vet_idx ON bookings (pet_id, vet_id);
CREATE INDEX bookings_owner_idx ON bookings (owner_id);

CREATE TABLE booking_status_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id uuid NOT NULL REFERENCES bookings (id),
    status     text NOT NULL,
    changed_by uuid NOT NULL REFERENCES users (id),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX booking_status_history_booking_idx ON booking_status_history (booking_id, id);
CREATE TRIGGER booking_status_history_append_only BEFORE UPDATE OR DELETE ON booking_status_history
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();

-- A consult is a video booking's meeting; `room` is its chat room (a conversation).
CREATE TABLE consults (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id uuid NOT NULL UNIQUE REFERENCES bookings (id),
    room       uuid NOT NULL UNIQUE REFERENCES conversations (id),
    vet_id     uuid NOT NULL REFERENCES users (id),
    owner_id   uuid NOT NULL REFERENCES users (id),
    pet_id     uuid NOT NULL REFERENCES pets (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Who may join a consult's call, and as what.
CREATE TABLE consult_participants (
    consult_id uuid NOT NULL REFERENCES consults (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    role       text NOT NULL CHECK (role IN ('owner', 'vet', 'invited')),
    added_by   uuid REFERENCES users (id),
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consult_id, user_id)
);
CREATE INDEX consult_participants_user_idx ON consult_participants (user_id);

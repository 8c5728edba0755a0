-- A recording may be recorded in several takes: its SFU room can close and start again (on this
-- replica or another) while the recording stays live. Each take numbers its segments from
-- take * 10000, so no take overwrites another's rows, and each participant gets a joined file
-- per take.
ALTER TABLE recordings ADD COLUMN takes integer NOT NULL DEFAULT 0;
ALTER TABLE recording_files ADD COLUMN take integer NOT NULL DEFAULT 1;
ALTER TABLE recording_files DROP CONSTRAINT recording_files_pkey;
ALTER TABLE recording_files ADD PRIMARY KEY (recording_id, user_id, take);

-- Where a stopped recording's manifest (its segments, participants and pauses) is in S3.
ALTER TABLE recordings ADD COLUMN manifest_key text;

"""Clinical records: pets (`pets`), what a health record is (typed, signed, locked after 24
hours, amended, never deleted: `records`), the records' repository, every read and write audited
(`ehr`), and the files attached to them (`attachments`)."""

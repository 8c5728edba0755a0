"""Consult recordings' media: taken on the hub replica hosting the SFU room, uploaded to S3
(segments, joined files, manifests), buffered while S3 is away, purged past retention. The
consent ledger, the lifecycle and download rights are `domain.recordings`."""

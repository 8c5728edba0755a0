"""Consult recordings over HTTP: listing a consult's recordings and presigned downloads (rules
in `domain.recordings.access`)."""

"""Consult recordings: the consent ledger, the recording lifecycle, upload to S3, retention and
signed downloads. Nothing records without consent."""

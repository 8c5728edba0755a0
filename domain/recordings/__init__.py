"""Consult recordings in the database: the append-only consent ledger (`consent`), each
recording's row, its state changes and its media (`lifecycle`: which state follows from
consent; `repository`: the rows), and who may list and download them (`access`)."""

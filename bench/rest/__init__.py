"""REST benchmark: the database-backed EHR read against a plain Litestar JSON endpoint."""

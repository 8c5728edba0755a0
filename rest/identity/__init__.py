"""Identity over HTTP: register, log in, refresh, log out, `/v1/me`, staff accounts (rules in
`domain.identity`)."""

"""Clinical records over HTTP: pets, health records and their attachments (rules in
`domain.clinical`)."""

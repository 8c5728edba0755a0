"""Scheduling over HTTP: vets' availability and slots, bookings and consults (rules in
`domain.scheduling`)."""

"""Scheduling: vets' weekly availability and the slots it opens, bookings that can never overlap
(what a booking is and the rules it follows: `booking_rules`; their repository: `bookings`), and
the consults (with their chat rooms) that video bookings create."""

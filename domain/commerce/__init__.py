"""Commerce: the marketplace catalog (`catalog`), its stock and cart reservations (`stock`) and
orders, Stripe payments and customers, vets' payouts through Connect, wellness-plan subscriptions
and the consult fees bookings hold and capture."""

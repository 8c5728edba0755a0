"""Commerce over HTTP: marketplace, catalog administration, wellness plans, vets' payout
accounts and Stripe's webhooks (rules in `domain.commerce`)."""

"""The Litestar REST service: controllers, guards, problem+json errors, OpenAPI, Stripe webhooks.

Controllers stay thin: they validate, call one domain function, and shape the answer; the rules
live in `domain/`."""

"""Clients of the outside services pawhub talks to, below both services (the hub and the REST
API import them; they import neither): `integrations.livekit` for LiveKit rooms, tokens and
webhooks."""

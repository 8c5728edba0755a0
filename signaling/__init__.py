"""WebRTC signaling: the `/rtc` namespace, consult rooms, lobby and admit, offer/answer/ICE relay,
TURN credentials, and the choice of p2p, sfu or livekit. Never decodes media."""

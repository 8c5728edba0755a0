"""The socket core of the hub: the Socket.IO server, authentication at connect, the `/chat`
namespace, presence, receipts, recovery, fan-out over Redis and rate limits.

`signaling/` and `moderation/` stand on this package; it never imports them."""

"""Prometheus metrics of the socket core (served at the hub's /metrics)."""

from prometheus_client import Counter, Gauge

MESSAGES_STORED = Counter("pawhub_chat_messages_stored", "Chat messages durably stored")
FANOUT_SUBSCRIBED = Gauge(
    "pawhub_fanout_subscribed", "1 while this replica's Redis fan-out listener is subscribed"
)
FANOUT_CHANNELS = Gauge(
    "pawhub_fanout_channels",
    "Room channels this replica's fan-out listens to (one per room with a member or watcher here)",
)
FANOUT_RECEIVED = Counter(
    "pawhub_fanout_publications_received",
    "Publications received from Redis, by fate: applied, own (this replica's, echoed back), "
    "not_hosted (of a room no longer hosted here: left while it travelled)",
    ["fate"],
)
FANOUT_RESUBSCRIBED = Counter(
    "pawhub_fanout_resubscriptions",
    "Room channels subscribed again after a lost connection (each caught up from PostgreSQL)",
)
FANOUT_CAUGHT_UP = Counter(
    "pawhub_fanout_caught_up_messages",
    "Messages delivered from PostgreSQL because their publication was late or lost",
)
FANOUT_PUBLISH_FAILURES = Counter(
    "pawhub_fanout_publish_failures", "Publications dropped because Redis was unreachable"
)

"""Prometheus metrics of the socket core (served at the hub's /metrics)."""

from prometheus_client import Counter, Gauge

MESSAGES_STORED = Counter("pawhub_chat_messages_stored", "Chat messages durably stored")
FANOUT_SUBSCRIBED = Gauge(
    "pawhub_fanout_subscribed", "1 while this replica's Redis fan-out listener is subscribed"
)
FANOUT_CAUGHT_UP = Counter(
    "pawhub_fanout_caught_up_messages",
    "Messages delivered from PostgreSQL because their publication was late or lost",
)
FANOUT_PUBLISH_FAILURES = Counter(
    "pawhub_fanout_publish_failures", "Publications dropped because Redis was unreachable"
)

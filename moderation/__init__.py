"""Live moderation: classifiers (a shipped model by default, Detoxify when configured), the worker
pool, thresholds, flags, moderator actions and the `/moderation` namespace. Never blocks the chat
hot path."""

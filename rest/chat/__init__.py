"""Chat over HTTP: conversations and the moderation queue (rules in `domain.chat`)."""

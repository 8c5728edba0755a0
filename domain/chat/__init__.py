"""Chat: conversations and their members (`conversations`); durable ordered messages, sent one
at a time or group-committed, read back and marked read (`messages`), under the posting rules
(`posting`), edited or deleted (`edits`); and their moderation: flags with their evidence
(`flags`), moderators' actions (`actions`), the scoring pipeline's records and evidence
retention (`moderation`). What the rules refuse is in `errors`, under `domain.errors`."""

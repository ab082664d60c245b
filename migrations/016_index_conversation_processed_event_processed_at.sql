-- conversation-service forgets applied event ids after PROCESSED_EVENT_RETENTION_DAYS; the index keeps
-- that hourly clean-up from scanning the whole table.
CREATE INDEX ix_conversation_processed_event_processed_at
    ON aigcspace.conversation_processed_event (processed_at);

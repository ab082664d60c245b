-- Completion events conversation-service has applied: the idempotency record of its consumer.
-- Owner: conversation-service. Written in the same transaction as the messages it stores.
CREATE TABLE aigcspace.conversation_processed_event (
    event_id     UUID        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_conversation_processed_event PRIMARY KEY (event_id)
);

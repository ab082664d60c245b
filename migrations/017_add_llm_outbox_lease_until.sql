-- In-flight replies (owner: llm-service). While a stream runs, its completion event as it stands is kept
-- in the outbox with a lease the stream renews; NULL is an ordinary outbox row, as before. The relay skips
-- a row while its lease runs: one whose lease expired belonged to a process that died mid-stream, and is
-- published as the `interrupted` event it holds.
ALTER TABLE aigcspace.llm_outbox ADD COLUMN lease_until TIMESTAMPTZ;

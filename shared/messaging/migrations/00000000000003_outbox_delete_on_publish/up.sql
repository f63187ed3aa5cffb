-- The relay now deletes a row in the transaction that publishes it (a row in the outbox is an
-- event not yet published; Kafka keeps what was sent): no UPDATE writing a new row version and
-- new index entries per event, no sweep of sent rows later, no partial indexes to maintain.
DELETE FROM outbox WHERE sent_at IS NOT NULL;
DROP INDEX outbox_unsent;
DROP INDEX outbox_sent_at;
ALTER TABLE outbox DROP COLUMN sent_at;

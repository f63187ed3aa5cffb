-- Published events kept for a window, for a broker that may lose what it acknowledged (the local
-- platform's embedded broker keeps nothing on disk; a lost Kafka cluster is the production case).
-- Only a relay with `kafka.keep_published_s > 0` writes here; with 0 (the default) published rows
-- are deleted as before and this table stays empty.
CREATE TABLE outbox_published (
    id              BIGINT PRIMARY KEY,
    event_id        UUID NOT NULL,
    topic           TEXT NOT NULL,
    message_key     TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         BYTEA NOT NULL,
    trace_headers   JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    kafka_partition INT NOT NULL,
    kafka_offset    BIGINT NOT NULL,
    published_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbox_published_at ON outbox_published (published_at);

-- The Kafka cluster the relay last published to: a different one means it may lack what was
-- acknowledged before.
CREATE TABLE relay_cluster (
    singleton  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id TEXT NOT NULL,
    seen_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

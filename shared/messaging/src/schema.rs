diesel::table! {
    outbox (id) {
        id -> BigInt,
        event_id -> Uuid,
        topic -> Text,
        message_key -> Text,
        event_type -> Text,
        payload -> Bytea,
        trace_headers -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    inbox (consumer, event_id) {
        consumer -> Text,
        event_id -> Uuid,
        topic -> Text,
        kafka_partition -> Integer,
        kafka_offset -> BigInt,
        processed_at -> Timestamptz,
    }
}

diesel::table! {
    outbox_published (id) {
        id -> BigInt,
        event_id -> Uuid,
        topic -> Text,
        message_key -> Text,
        event_type -> Text,
        payload -> Bytea,
        trace_headers -> Jsonb,
        created_at -> Timestamptz,
        kafka_partition -> Integer,
        kafka_offset -> BigInt,
        published_at -> Timestamptz,
    }
}

diesel::table! {
    relay_cluster (singleton) {
        singleton -> Bool,
        cluster_id -> Text,
        seen_at -> Timestamptz,
    }
}

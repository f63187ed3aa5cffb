//! Writing events in the caller's transaction.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use platform_events::{Envelope, Message as _};

use crate::schema::outbox;

/// Adds `envelope` to the outbox for `topic`, keyed by its aggregate id. Call it inside the
/// transaction that makes the change the event describes (or put [`row`] into an
/// [`AtomicWrite`](crate::atomic::AtomicWrite)).
pub async fn enqueue(conn: &mut AsyncPgConnection, topic: &str, envelope: &Envelope) -> QueryResult<()> {
    row(topic, envelope)?.execute(conn).await?;
    Ok(())
}

/// The INSERT of `envelope`'s outbox row, with the current trace context, not yet executed.
pub fn row(
    topic: &str,
    envelope: &Envelope,
) -> QueryResult<
    impl diesel::query_builder::QueryFragment<diesel::pg::Pg> + diesel::query_builder::QueryId + Send + 'static,
> {
    let event_id = envelope.event_uuid().map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let headers = serde_json::to_value(crate::trace::current_context_headers()).unwrap_or_default();
    Ok(diesel::insert_into(outbox::table).values((
        outbox::event_id.eq(event_id),
        outbox::topic.eq(topic.to_string()),
        outbox::message_key.eq(envelope.aggregate_id.clone()),
        outbox::event_type.eq(envelope.event_type.clone()),
        outbox::payload.eq(envelope.encode_to_vec()),
        outbox::trace_headers.eq(headers),
    )))
}

/// Adds many envelopes for `topic` in one statement (a sweep that changes many aggregates).
pub async fn enqueue_many(conn: &mut AsyncPgConnection, topic: &str, envelopes: &[Envelope]) -> QueryResult<()> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let headers = serde_json::to_value(crate::trace::current_context_headers()).unwrap_or_default();
    let mut rows = Vec::with_capacity(envelopes.len());
    for e in envelopes {
        let event_id = e.event_uuid().map_err(|err| diesel::result::Error::SerializationError(Box::new(err)))?;
        rows.push((
            outbox::event_id.eq(event_id),
            outbox::topic.eq(topic),
            outbox::message_key.eq(&e.aggregate_id),
            outbox::event_type.eq(&e.event_type),
            outbox::payload.eq(e.encode_to_vec()),
            outbox::trace_headers.eq(headers.clone()),
        ));
    }
    diesel::insert_into(outbox::table).values(rows).execute(conn).await?;
    Ok(())
}

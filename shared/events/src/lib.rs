//! Event schemas and the envelope every event travels in.
//!
//! The `.proto` files in `proto/` are the contract; this crate compiles them at build time with
//! protox (no system `protoc`) and exposes the generated types, the topic names, and helpers to
//! wrap a message in an [`Envelope`]. Any crate may import it.

#![allow(clippy::all)] // generated code below

pub mod platform {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/platform.v1.rs"));
    }
    pub mod catalog {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/platform.catalog.v1.rs"));
        }
    }
    pub mod authorization {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/platform.authorization.v1.rs"));
        }
    }
    pub mod city {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/platform.city.v1.rs"));
        }
    }
    pub mod sandbox {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/platform.sandbox.v1.rs"));
        }
    }
}

pub use platform::city::v1 as city;
pub use platform::sandbox::v1 as sandbox;

pub use platform::authorization::v1 as authorization;
pub use platform::catalog::v1 as catalog;
pub use platform::v1::Envelope;

/// The encoded `FileDescriptorSet` of every schema, as built.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.binpb"));

/// Topic names. Topics exist before services start (Strimzi `KafkaTopic` objects, or the local
/// broker); services never create them.
pub mod topics {
    pub const CATALOG_RESOURCE: &str = "catalog.resource.v1";
    pub const CATALOG_REGISTRATION: &str = "catalog.registration.v1";
    pub const CATALOG_QUALITY: &str = "catalog.quality.v1";
    pub const AUTHORIZATION_PLAN: &str = "authorization.plan.v1";
    pub const AUTHORIZATION_AGREEMENT: &str = "authorization.agreement.v1";
    pub const AUTHORIZATION_GRANT: &str = "authorization.grant.v1";
    pub const AUTHORIZATION_SELECTION: &str = "authorization.selection.v1";
    pub const SANDBOX_USAGE: &str = "sandbox.usage.v1";
    pub const SANDBOX_AUDIT: &str = "sandbox.audit.v1";
    pub const SANDBOX_OUTPUT: &str = "sandbox.output.v1";
    pub const REVIEW_PRODUCT: &str = "review.product.v1";
    pub const PRICING_PRICE: &str = "pricing.price.v1";
    pub const PRICING_ORDER: &str = "pricing.order.v1";
    pub const PRICING_SETTLEMENT: &str = "pricing.settlement.v1";
    pub const DISCLOSURE_PUBLICATION: &str = "disclosure.publication.v1";
    pub const CITY_FILING: &str = "city.filing.v1";
    pub const PROVINCE_RECEIPT: &str = "province.receipt.v1";

    /// Every topic of the platform, for the local broker and `k8s/` topic objects.
    pub const ALL: &[&str] = &[
        CATALOG_RESOURCE,
        CATALOG_REGISTRATION,
        CATALOG_QUALITY,
        AUTHORIZATION_PLAN,
        AUTHORIZATION_AGREEMENT,
        AUTHORIZATION_GRANT,
        AUTHORIZATION_SELECTION,
        SANDBOX_USAGE,
        SANDBOX_AUDIT,
        SANDBOX_OUTPUT,
        REVIEW_PRODUCT,
        PRICING_PRICE,
        PRICING_ORDER,
        PRICING_SETTLEMENT,
        DISCLOSURE_PUBLICATION,
        CITY_FILING,
        PROVINCE_RECEIPT,
    ];

    /// The dead-letter topic of `topic`.
    pub fn dead_letter(topic: &str) -> String {
        format!("{topic}.dlq")
    }
}

/// A protobuf message with its fully qualified name, so the envelope can say what it carries.
pub trait EventPayload: prost::Message + Default {
    const TYPE_NAME: &'static str;
}

impl EventPayload for catalog::ResourceEvent {
    const TYPE_NAME: &'static str = "platform.catalog.v1.ResourceEvent";
}
impl EventPayload for catalog::RegistrationEvent {
    const TYPE_NAME: &'static str = "platform.catalog.v1.RegistrationEvent";
}
impl EventPayload for catalog::ObjectionEvent {
    const TYPE_NAME: &'static str = "platform.catalog.v1.ObjectionEvent";
}
impl EventPayload for authorization::PlanEvent {
    const TYPE_NAME: &'static str = "platform.authorization.v1.PlanEvent";
}
impl EventPayload for city::CityFiling {
    const TYPE_NAME: &'static str = "platform.city.v1.CityFiling";
}
impl EventPayload for city::ProvinceReceipt {
    const TYPE_NAME: &'static str = "platform.city.v1.ProvinceReceipt";
}
impl EventPayload for authorization::GrantEvent {
    const TYPE_NAME: &'static str = "platform.authorization.v1.GrantEvent";
}
impl EventPayload for sandbox::UsageEvent {
    const TYPE_NAME: &'static str = "platform.sandbox.v1.UsageEvent";
}
impl EventPayload for sandbox::AuditEvent {
    const TYPE_NAME: &'static str = "platform.sandbox.v1.AuditEvent";
}
impl EventPayload for authorization::AgreementEvent {
    const TYPE_NAME: &'static str = "platform.authorization.v1.AgreementEvent";
}
impl EventPayload for authorization::SubAuthorizationEvent {
    const TYPE_NAME: &'static str = "platform.authorization.v1.SubAuthorizationEvent";
}
impl EventPayload for authorization::SelectionEvent {
    const TYPE_NAME: &'static str = "platform.authorization.v1.SelectionEvent";
}

impl catalog::ResourceEvent {
    /// The resource the event carries, with its id parsed: what every read model of the catalog
    /// starts from.
    pub fn into_resource(self) -> Result<(uuid::Uuid, catalog::Resource), EnvelopeError> {
        let r = self.resource.ok_or(EnvelopeError::Invalid("resource"))?;
        let id = uuid::Uuid::parse_str(&r.id).map_err(|_| EnvelopeError::Invalid("resource.id"))?;
        Ok((id, r))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("envelope carries {found}, expected {expected}")]
    WrongPayload { expected: &'static str, found: String },
    #[error("envelope field `{0}` is missing or invalid")]
    Invalid(&'static str),
}

/// What a producer says about an event besides its payload.
#[derive(Debug, Clone)]
pub struct EventMeta {
    pub event_type: String,
    pub aggregate_id: String,
    pub aggregate_version: u64,
    pub producer: String,
    pub jurisdiction: String,
}

impl Envelope {
    /// Wraps `payload` with a fresh UUIDv7 event id and the current time.
    pub fn wrap<P: EventPayload>(meta: EventMeta, payload: &P) -> Envelope {
        let now = chrono::Utc::now();
        Envelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: meta.event_type,
            aggregate_id: meta.aggregate_id,
            aggregate_version: meta.aggregate_version,
            occurred_at: Some(timestamp(now)),
            producer: meta.producer,
            jurisdiction: meta.jurisdiction,
            payload_type: P::TYPE_NAME.to_string(),
            payload: payload.encode_to_vec(),
        }
    }

    /// Decodes an envelope and checks the fields every consumer relies on.
    pub fn decode_checked(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let env = <Envelope as prost::Message>::decode(bytes)?;
        env.event_uuid()?;
        if env.event_type.is_empty() {
            return Err(EnvelopeError::Invalid("event_type"));
        }
        if env.aggregate_id.is_empty() {
            return Err(EnvelopeError::Invalid("aggregate_id"));
        }
        Ok(env)
    }

    pub fn event_uuid(&self) -> Result<uuid::Uuid, EnvelopeError> {
        uuid::Uuid::parse_str(&self.event_id).map_err(|_| EnvelopeError::Invalid("event_id"))
    }

    /// Decodes the payload as `P`, refusing a payload of another type.
    pub fn payload_as<P: EventPayload>(&self) -> Result<P, EnvelopeError> {
        if self.payload_type != P::TYPE_NAME {
            return Err(EnvelopeError::WrongPayload { expected: P::TYPE_NAME, found: self.payload_type.clone() });
        }
        Ok(P::decode(self.payload.as_slice())?)
    }
}

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

pub use prost::Message;

#[cfg(test)]
mod compat;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_with_a_v7_id() {
        let payload = catalog::ObjectionEvent { objection_id: "o1".into(), ..Default::default() };
        let meta = EventMeta {
            event_type: "catalog.quality.filed".into(),
            aggregate_id: "o1".into(),
            aggregate_version: 1,
            producer: "catalog".into(),
            jurisdiction: "610000".into(),
        };
        let env = Envelope::wrap(meta, &payload);
        let back = Envelope::decode_checked(&env.encode_to_vec()).unwrap();
        assert_eq!(back.event_uuid().unwrap().get_version_num(), 7);
        assert_eq!(back.payload_as::<catalog::ObjectionEvent>().unwrap().objection_id, "o1");
        assert!(back.payload_as::<catalog::ResourceEvent>().is_err());
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert!(Envelope::decode_checked(b"\xff\xff\xff").is_err());
        assert!(Envelope::decode_checked(&Envelope::default().encode_to_vec()).is_err());
    }
}

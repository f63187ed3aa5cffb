//! The catalog's events, built from rows, enqueued in the change's transaction.

use diesel_async::AsyncPgConnection;
use platform_events::{Envelope, EventMeta, catalog as pb, timestamp, topics};

use crate::domain::objection::ObjectionState;
use crate::domain::resource::{OpenCategory, PiiKind, ResourceContent, SecurityGrade, Sensitivity, UpdateFrequency};
use crate::errors::Result;
use crate::store::{ObjectionRow, RegistrationRow, ResourceRow, StepRow};

pub const PRODUCER: &str = "catalog";

fn open_category(c: OpenCategory) -> pb::OpenCategory {
    match c {
        OpenCategory::Unconditional => pb::OpenCategory::Unconditional,
        OpenCategory::Conditional => pb::OpenCategory::Conditional,
        OpenCategory::NotOpen => pb::OpenCategory::NotOpen,
    }
}

fn grade(g: SecurityGrade) -> pb::SecurityGrade {
    match g {
        SecurityGrade::Core => pb::SecurityGrade::Core,
        SecurityGrade::Important => pb::SecurityGrade::Important,
        SecurityGrade::General => pb::SecurityGrade::General,
    }
}

fn frequency(f: UpdateFrequency) -> pb::UpdateFrequency {
    match f {
        UpdateFrequency::RealTime => pb::UpdateFrequency::RealTime,
        UpdateFrequency::Daily => pb::UpdateFrequency::Daily,
        UpdateFrequency::Weekly => pb::UpdateFrequency::Weekly,
        UpdateFrequency::Monthly => pb::UpdateFrequency::Monthly,
        UpdateFrequency::Quarterly => pb::UpdateFrequency::Quarterly,
        UpdateFrequency::Yearly => pb::UpdateFrequency::Yearly,
        UpdateFrequency::OnDemand => pb::UpdateFrequency::OnDemand,
    }
}

fn sensitivity(s: Sensitivity) -> pb::Sensitivity {
    match s {
        Sensitivity::None => pb::Sensitivity::None,
        Sensitivity::Personal => pb::Sensitivity::Personal,
        Sensitivity::SensitivePersonal => pb::Sensitivity::SensitivePersonal,
        Sensitivity::TradeSecret => pb::Sensitivity::TradeSecret,
    }
}

fn pii(k: Option<PiiKind>) -> pb::PiiKind {
    match k {
        None => pb::PiiKind::None,
        Some(PiiKind::IdCard) => pb::PiiKind::IdCard,
        Some(PiiKind::Phone) => pb::PiiKind::Phone,
        Some(PiiKind::Name) => pb::PiiKind::Name,
        Some(PiiKind::Address) => pb::PiiKind::Address,
        Some(PiiKind::BankAccount) => pb::PiiKind::BankAccount,
        Some(PiiKind::Other) => pb::PiiKind::Other,
    }
}

fn resource_message(row: &ResourceRow, c: &ResourceContent) -> pb::Resource {
    pb::Resource {
        id: row.id.to_string(),
        jurisdiction: row.jurisdiction.clone(),
        code: c.code.clone(),
        name: c.name.clone(),
        source_unit: c.source_unit.clone(),
        sector: c.sector.clone(),
        format: c.format.clone(),
        update_frequency: frequency(c.update_frequency) as i32,
        open_category: open_category(c.open_category) as i32,
        security_grade: grade(c.security_grade) as i32,
        fields: c
            .fields
            .iter()
            .map(|f| pb::Field {
                name: f.name.clone(),
                data_type: f.data_type.as_str().into(),
                sensitivity: sensitivity(f.sensitivity) as i32,
                pii_kind: pii(f.pii_kind) as i32,
                description: f.description.clone(),
            })
            .collect(),
        provenance: Some(pb::Provenance {
            kind: c.provenance.kind.as_str().into(),
            provider: c.provenance.provider.clone().unwrap_or_default(),
            provider_consent: c.provenance.provider_consent,
        }),
        version: row.version as u32,
        authorizable: row.authorizable,
        not_authorizable_rule: row.not_authorizable_rule.clone().unwrap_or_default(),
        quality_requirements: c.quality_requirements.clone(),
        published_at: row.published_at.map(timestamp),
        withdrawn: row.state == "withdrawn",
    }
}

/// `catalog.resource.v1`: published, versioned or withdrawn, with the full field schema.
/// Bumps the row's event sequence (the envelope's aggregate version); save the row after.
pub fn resource_changed(
    write: &mut platform_messaging::AtomicWrite,
    topic_prefix: &str,
    row: &mut ResourceRow,
    change: pb::ResourceChange,
) -> Result<()> {
    row.event_seq += 1;
    let content = row.content()?;
    let event_type = match change {
        pb::ResourceChange::Published => "catalog.resource.published",
        pb::ResourceChange::Versioned => "catalog.resource.versioned",
        pb::ResourceChange::Withdrawn => "catalog.resource.withdrawn",
        pb::ResourceChange::Unspecified => "catalog.resource.changed",
    };
    let payload = pb::ResourceEvent { change: change as i32, resource: Some(resource_message(row, &content)) };
    let env = Envelope::wrap(
        EventMeta {
            event_type: event_type.into(),
            aggregate_id: row.id.to_string(),
            aggregate_version: row.event_seq as u64,
            producer: PRODUCER.into(),
            jurisdiction: row.jurisdiction.clone(),
        },
        &payload,
    );
    write.publish(&format!("{topic_prefix}{}", topics::CATALOG_RESOURCE), &env)?;
    Ok(())
}

/// `catalog.registration.v1`, keyed by the registration number.
pub async fn registered(conn: &mut AsyncPgConnection, topic_prefix: &str, r: &RegistrationRow) -> Result<()> {
    let payload = pb::RegistrationEvent {
        registration_number: r.number.clone(),
        subject_kind: r.subject_kind.clone(),
        subject_id: r.subject_id.to_string(),
        jurisdiction: r.jurisdiction.clone(),
        year: r.year,
        sequence: r.seq as u64,
        subject_version: r.subject_version as u32,
        registered_by: r.registered_by.clone(),
        registered_at: Some(timestamp(r.registered_at)),
    };
    let env = Envelope::wrap(
        EventMeta {
            event_type: "catalog.registration.issued".into(),
            aggregate_id: r.number.clone(),
            aggregate_version: 1,
            producer: PRODUCER.into(),
            jurisdiction: r.jurisdiction.clone(),
        },
        &payload,
    );
    platform_messaging::outbox::enqueue(conn, &format!("{topic_prefix}{}", topics::CATALOG_REGISTRATION), &env).await?;
    Ok(())
}

fn objection_state(s: ObjectionState) -> pb::ObjectionState {
    match s {
        ObjectionState::Open => pb::ObjectionState::Open,
        ObjectionState::Accepted => pb::ObjectionState::Accepted,
        ObjectionState::Rectified => pb::ObjectionState::Rectified,
        ObjectionState::Rejected => pb::ObjectionState::Rejected,
    }
}

/// `catalog.quality.v1`: every step of an objection, keyed by the objection id.
pub async fn objection_step(
    conn: &mut AsyncPgConnection,
    topic_prefix: &str,
    o: &ObjectionRow,
    step: &StepRow,
) -> Result<()> {
    let payload = pb::ObjectionEvent {
        objection_id: o.id.to_string(),
        resource_id: o.resource_id.to_string(),
        field: o.field.clone().unwrap_or_default(),
        state: objection_state(o.state()?) as i32,
        actor: step.actor.clone(),
        actor_org: step.actor_org.clone(),
        reason: step.reason.clone(),
        due_date: o.due_date.to_string(),
        due_date_provisional: o.due_date_provisional,
        jurisdiction: o.jurisdiction.clone(),
    };
    let env = Envelope::wrap(
        EventMeta {
            event_type: format!("catalog.quality.{}", o.state),
            aggregate_id: o.id.to_string(),
            aggregate_version: step.seq as u64,
            producer: PRODUCER.into(),
            jurisdiction: o.jurisdiction.clone(),
        },
        &payload,
    );
    platform_messaging::outbox::enqueue(conn, &format!("{topic_prefix}{}", topics::CATALOG_QUALITY), &env).await?;
    Ok(())
}

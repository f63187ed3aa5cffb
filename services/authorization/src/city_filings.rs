//! Filings from city nodes (SX-19 plans, SX-21 agreements, annual reports), consumed from
//! `city.filing.v1` and answered once on `province.receipt.v1` through the outbox, in the same
//! transaction as the record: a redelivered filing changes nothing and is not answered twice.

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::future::BoxFuture;
use platform_events::{Envelope, EventMeta, city as pb, timestamp, topics};
use platform_messaging::{Handler, HandlerError};

use crate::domain::plan;
use crate::store::ProfileRow;

diesel::table! {
    city_filings (filing_id) {
        filing_id -> Uuid,
        city -> Text,
        province -> Nullable<Text>,
        kind -> Text,
        subject_id -> Text,
        title -> Text,
        decided_on -> Nullable<Date>,
        document_sha256 -> Text,
        status -> Text,
        reasons -> Jsonb,
        due_date -> Nullable<Date>,
        late -> Bool,
        rule -> Nullable<Text>,
        received_at -> Timestamptz,
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize, utoipa::ToSchema)]
#[diesel(table_name = city_filings)]
pub struct FilingRow {
    pub filing_id: uuid::Uuid,
    pub city: String,
    pub province: Option<String>,
    pub kind: String,
    pub subject_id: String,
    pub title: String,
    pub decided_on: Option<NaiveDate>,
    pub document_sha256: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub reasons: serde_json::Value,
    pub due_date: Option<NaiveDate>,
    pub late: bool,
    pub rule: Option<String>,
    pub received_at: chrono::DateTime<Utc>,
}

pub struct CityFilings {
    pub topic_prefix: String,
    pub calendar: &'static platform_calendar::Calendar,
}

fn kind_name(k: i32) -> &'static str {
    match pb::FilingKind::try_from(k) {
        Ok(pb::FilingKind::Plan) => "plan",
        Ok(pb::FilingKind::Agreement) => "agreement",
        Ok(pb::FilingKind::AnnualReport) => "annual_report",
        _ => "unspecified",
    }
}

impl Handler for CityFilings {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let f: pb::CityFiling = env.payload_as()?;
            let filing_id = uuid::Uuid::parse_str(&f.filing_id)
                .map_err(|_| HandlerError::Permanent(format!("filing_id `{}` is not a UUID", f.filing_id)))?;
            let exists: i64 =
                city_filings::table.filter(city_filings::filing_id.eq(filing_id)).count().get_result(conn).await?;
            if exists > 0 {
                // The same filing id again (another event id): answered already.
                return Ok(());
            }
            let mut reasons = Vec::new();
            // A city files for itself only (SX-19, SX-21): the payload, the envelope and the
            // producer must all name the same city.
            if f.city != env.jurisdiction || env.producer != format!("city-{}", f.city) {
                reasons.push(format!(
                    "city `{}` is not the producer's own jurisdiction (`{}`, producer `{}`)",
                    f.city, env.jurisdiction, env.producer
                ));
            }
            let profile = ProfileRow::current(conn, &f.city).await.ok();
            let province = profile.as_ref().and_then(|p| p.parent.clone());
            match profile.as_ref().map(|p| p.level.as_str()) {
                Some("city" | "district") => {}
                Some(_) => reasons.push(format!("`{}` is not a city or district", f.city)),
                None => reasons.push(format!("unknown jurisdiction `{}`", f.city)),
            }
            let kind = kind_name(f.kind);
            if kind == "unspecified" {
                reasons.push("kind must be plan, agreement or annual_report".into());
            }
            if f.subject_id.trim().is_empty() {
                reasons.push("subject_id is required".into());
            }
            if f.title.trim().is_empty() {
                reasons.push("title is required".into());
            }
            if f.document_sha256.len() != 64 || !f.document_sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                reasons.push("document_sha256 must be 64 hex digits".into());
            }
            let today = platform_calendar::today_in_china();
            let decided_on = if f.decided_on.is_empty() { None } else { f.decided_on.parse::<NaiveDate>().ok() };
            if matches!(kind, "plan" | "agreement") && decided_on.is_none() {
                reasons.push("decided_on (YYYY-MM-DD) is required for plans and agreements".into());
            }
            if decided_on.is_some_and(|d| d > today) {
                reasons.push("decided_on is in the future".into());
            }
            // The deadline of the city's profile (SX-19: plans; SX-21: agreements).
            let mut due = None;
            if let (Some(p), Some(d)) = (profile.as_ref(), decided_on) {
                let values = p.profile().map_err(|e| HandlerError::Transient(e.to_string()))?.values;
                let ruled = match kind {
                    "plan" => values.plan_filing_deadline,
                    "agreement" => values.agreement_filing_deadline,
                    _ => None,
                };
                due = plan::deadline(ruled.as_ref(), true, d, self.calendar);
            }
            let late = due.as_ref().is_some_and(|d| today > d.date);
            let status = if reasons.is_empty() { "accepted" } else { "rejected" };
            let row = FilingRow {
                filing_id,
                city: f.city.clone(),
                province,
                kind: kind.into(),
                subject_id: f.subject_id.clone(),
                title: f.title.clone(),
                decided_on,
                document_sha256: f.document_sha256.clone(),
                status: status.into(),
                reasons: serde_json::to_value(&reasons).unwrap_or_default(),
                due_date: due.as_ref().map(|d| d.date),
                late,
                rule: due.as_ref().map(|d| d.rule.clone()),
                received_at: Utc::now(),
            };
            diesel::insert_into(city_filings::table).values(&row).execute(conn).await?;
            let receipt = pb::ProvinceReceipt {
                filing_id: f.filing_id.clone(),
                city: f.city.clone(),
                status: if reasons.is_empty() { pb::ReceiptStatus::Accepted } else { pb::ReceiptStatus::Rejected }
                    as i32,
                reasons,
                due_date: row.due_date.map(|d| d.to_string()).unwrap_or_default(),
                late,
                rule: row.rule.clone().unwrap_or_default(),
                received_at: Some(timestamp(row.received_at)),
            };
            let env = Envelope::wrap(
                EventMeta {
                    event_type: format!("province.receipt.{status}"),
                    // Keyed by the city, so each city reads its receipts in order.
                    aggregate_id: f.city.clone(),
                    aggregate_version: 1,
                    producer: crate::events::PRODUCER.into(),
                    jurisdiction: row.province.clone().unwrap_or_default(),
                },
                &receipt,
            );
            platform_messaging::outbox::enqueue(
                conn,
                &format!("{}{}", self.topic_prefix, topics::PROVINCE_RECEIPT),
                &env,
            )
            .await?;
            Ok(())
        })
    }
}

/// Filings of the cities under `province`, newest first.
pub async fn list(conn: &mut AsyncPgConnection, province: &str, limit: i64) -> crate::errors::Result<Vec<FilingRow>> {
    Ok(city_filings::table
        .filter(city_filings::province.eq(province))
        .order(city_filings::received_at.desc())
        .limit(limit)
        .select(FilingRow::as_select())
        .load(conn)
        .await?)
}

//! The read model of the catalog, kept from `catalog.resource.v1`: which resources exist, in
//! which jurisdiction, whether they may enter authorized operation (NS-2, SX-5) and their fields
//! with sensitivity (for field-level scopes and ZJK-15).

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use futures::future::BoxFuture;
use platform_events::{Envelope, catalog as pb};
use platform_messaging::{Handler, HandlerError};

use crate::store::CatalogResource;

pub struct CatalogView;

fn open_category(c: i32) -> &'static str {
    match pb::OpenCategory::try_from(c) {
        Ok(pb::OpenCategory::Unconditional) => "unconditional",
        Ok(pb::OpenCategory::Conditional) => "conditional",
        Ok(pb::OpenCategory::NotOpen) => "not_open",
        _ => "unspecified",
    }
}

impl Handler for CatalogView {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let ev: pb::ResourceEvent = env.payload_as()?;
            let (id, r) = ev.into_resource()?;
            let fields: Vec<serde_json::Value> = r
                .fields
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "name": f.name,
                        "data_type": f.data_type,
                        "sensitivity": pb::Sensitivity::try_from(f.sensitivity).map(|s| s.as_str_name()).unwrap_or("SENSITIVITY_UNSPECIFIED"),
                        "pii_kind": pb::PiiKind::try_from(f.pii_kind).map(|s| s.as_str_name()).unwrap_or("PII_KIND_UNSPECIFIED"),
                    })
                })
                .collect();
            let row = CatalogResource {
                id,
                jurisdiction: r.jurisdiction,
                code: r.code,
                name: r.name,
                version: r.version as i32,
                open_category: open_category(r.open_category).into(),
                authorizable: r.authorizable && !r.withdrawn,
                not_authorizable_rule: Some(r.not_authorizable_rule).filter(|s| !s.is_empty()),
                withdrawn: r.withdrawn,
                fields: serde_json::Value::Array(fields),
                event_version: env.aggregate_version as i64,
                updated_at: Utc::now(),
            };
            row.upsert_newer(conn).await.map_err(|e| HandlerError::Transient(e.to_string()))
        })
    }
}

//! The gateway's read model of the catalog (`catalog.resource.v1`): each resource's fields with
//! their data type, sensitivity and PII kind, which decide how loads are checked and how
//! workspaces mask.

use diesel::sql_types::{BigInt, Bool, Integer, Jsonb, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use futures::future::BoxFuture;
use platform_events::{Envelope, catalog as pb};
use platform_messaging::{Handler, HandlerError};
use serde::{Deserialize, Serialize};

/// A field as the gateway keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Field {
    pub name: String,
    /// text | integer | decimal | boolean | date | timestamp
    pub data_type: String,
    /// none | personal | sensitive_personal | trade_secret
    pub sensitivity: String,
    /// id_card | phone | name | address | bank_account | other | none
    pub pii_kind: String,
}

impl Field {
    pub fn sensitive(&self) -> bool {
        self.sensitivity != "none"
    }

    /// The mask class: the PII kind when there is one, the sensitivity otherwise.
    pub fn mask_class(&self) -> &str {
        if self.pii_kind != "none" && self.pii_kind != "unspecified" { &self.pii_kind } else { &self.sensitivity }
    }
}

/// `SENSITIVITY_SENSITIVE_PERSONAL` → `sensitive_personal`.
fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_lowercase()
}

pub struct CatalogView;

impl Handler for CatalogView {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let ev: pb::ResourceEvent = env.payload_as()?;
            let (id, r) = ev.into_resource()?;
            let fields: Vec<Field> = r
                .fields
                .iter()
                .map(|f| Field {
                    name: f.name.clone(),
                    data_type: f.data_type.clone(),
                    sensitivity: short(
                        pb::Sensitivity::try_from(f.sensitivity).map(|s| s.as_str_name()).unwrap_or("UNSPECIFIED"),
                        "SENSITIVITY_",
                    ),
                    pii_kind: short(
                        pb::PiiKind::try_from(f.pii_kind).map(|s| s.as_str_name()).unwrap_or("NONE"),
                        "PII_KIND_",
                    ),
                })
                .map(|mut f| {
                    // An unknown sensitivity is treated as the strictest, never as "none".
                    if f.sensitivity == "unspecified" {
                        f.sensitivity = "sensitive_personal".into();
                    }
                    f
                })
                .collect();
            let open = short(
                pb::OpenCategory::try_from(r.open_category).map(|s| s.as_str_name()).unwrap_or("UNSPECIFIED"),
                "OPEN_CATEGORY_",
            );
            let fields = serde_json::to_value(&fields).map_err(|e| HandlerError::Permanent(e.to_string()))?;
            diesel::sql_query(
                "INSERT INTO resources (id, jurisdiction, code, name, version, open_category, withdrawn, fields, event_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO UPDATE SET jurisdiction = EXCLUDED.jurisdiction, code = EXCLUDED.code, \
                   name = EXCLUDED.name, version = EXCLUDED.version, open_category = EXCLUDED.open_category, \
                   withdrawn = EXCLUDED.withdrawn, fields = EXCLUDED.fields, event_version = EXCLUDED.event_version, \
                   updated_at = now() \
                 WHERE resources.event_version < EXCLUDED.event_version",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(&r.jurisdiction)
            .bind::<Text, _>(&r.code)
            .bind::<Text, _>(&r.name)
            .bind::<Integer, _>(r.version as i32)
            .bind::<Text, _>(&open)
            .bind::<Bool, _>(r.withdrawn)
            .bind::<Jsonb, _>(fields)
            .bind::<BigInt, _>(env.aggregate_version as i64)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(|e| HandlerError::Transient(e.to_string()))
        })
    }
}

//! What every use case needs.

use std::sync::Arc;

use platform_messaging::RelayHandle;
use platform_policy::Profiles;
use platform_store::Pool;

use crate::errors::Result;
use crate::pgpool::DataPool;

#[derive(Clone)]
pub struct State {
    /// The service's own tables (diesel).
    pub pool: Pool,
    /// Loads and checked queries (tokio-postgres).
    pub data: DataPool,
    pub relay: RelayHandle,
    pub profiles: Arc<Profiles>,
    pub topic_prefix: String,
    pub metrics: crate::metrics::GatewayMetrics,
    /// Analysis jobs (None only while starting).
    pub workloads: Option<crate::workloads::Workloads>,
    /// Per-group totals by workspace data version (see [`crate::check::Totals`]).
    pub totals: crate::query::TotalsCache,
    /// Groups released per grant, for overlap control (see [`crate::domain::overlap`]).
    pub released: crate::store::released::ReleasedGroups,
}

impl State {
    pub async fn conn(&self) -> Result<platform_store::PooledConn> {
        Ok(platform_store::conn(&self.pool).await?)
    }
}

//! What an SRE pages on and the supervisors watch: queries by decision, refusals by check,
//! query latency, suppressed groups, refusal-burst alerts, loads, and the audit chain's state.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

#[derive(Clone)]
pub struct GatewayMetrics {
    pub queries: IntCounterVec,
    pub refusals: IntCounterVec,
    pub query_seconds: Histogram,
    pub check_seconds: Histogram,
    pub suppressed_groups: IntCounter,
    pub refusal_bursts: IntCounter,
    pub loaded_rows: IntCounter,
    pub loads: IntCounterVec,
    pub audit_chain_broken: IntGauge,
    pub open_workspaces: IntGauge,
}

impl GatewayMetrics {
    pub fn new(m: &platform_telemetry::Metrics) -> Result<GatewayMetrics, prometheus::Error> {
        let g = GatewayMetrics {
            queries: IntCounterVec::new(
                Opts::new("sandbox_queries_total", "Queries by decision (allowed, suppressed, refused, failed)"),
                &["decision"],
            )?,
            refusals: IntCounterVec::new(
                Opts::new("sandbox_refusals_total", "Refused queries by the check and rule that refused them"),
                &["check", "rule"],
            )?,
            query_seconds: Histogram::with_opts(
                HistogramOpts::new("sandbox_query_duration_seconds", "Checked query execution time")
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            check_seconds: Histogram::with_opts(
                HistogramOpts::new("sandbox_check_duration_seconds", "Parse, check and rewrite time")
                    .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01]),
            )?,
            suppressed_groups: IntCounter::new("sandbox_suppressed_groups_total", "Result groups suppressed (WF-26)")?,
            refusal_bursts: IntCounter::new("sandbox_refusal_bursts_total", "Refusal-burst alerts raised (WF-30)")?,
            loaded_rows: IntCounter::new("sandbox_loaded_rows_total", "Rows stored by successful loads")?,
            loads: IntCounterVec::new(Opts::new("sandbox_loads_total", "Loads by outcome"), &["outcome"])?,
            audit_chain_broken: IntGauge::new(
                "sandbox_audit_chain_broken",
                "1 when the last verification found a broken audit chain (WF-30)",
            )?,
            open_workspaces: IntGauge::new("sandbox_open_workspaces", "Workspaces open for queries")?,
        };
        m.registry.register(Box::new(g.queries.clone()))?;
        m.registry.register(Box::new(g.refusals.clone()))?;
        m.registry.register(Box::new(g.query_seconds.clone()))?;
        m.registry.register(Box::new(g.check_seconds.clone()))?;
        m.registry.register(Box::new(g.suppressed_groups.clone()))?;
        m.registry.register(Box::new(g.refusal_bursts.clone()))?;
        m.registry.register(Box::new(g.loaded_rows.clone()))?;
        m.registry.register(Box::new(g.loads.clone()))?;
        m.registry.register(Box::new(g.audit_chain_broken.clone()))?;
        m.registry.register(Box::new(g.open_workspaces.clone()))?;
        for d in ["allowed", "suppressed", "refused", "failed"] {
            g.queries.with_label_values(&[d]);
        }
        for o in ["stored", "rejected"] {
            g.loads.with_label_values(&[o]);
        }
        Ok(g)
    }
}

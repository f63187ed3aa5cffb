//! What `make bench`'s binaries share: each figure is printed with its target and recorded, one
//! JSON object a line, in `$CARGO_TARGET_DIR/bench/figures.jsonl`; `scripts/bench.sh` gathers
//! them with the machine's description into `target/bench/latest.json`, and
//! `scripts/bench-compare.py` compares that with the accepted figures in
//! `docs/bench-accepted.json`, naming every figure that moved by more than its noise.
#![allow(clippy::print_stdout)]

use std::io::Write as _;

/// A figure's target.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// At most this (latencies, durations, ratios of cost).
    AtMost(f64),
    /// At least this (rates, ratios of throughput).
    AtLeast(f64),
    /// Printed for the record, without a target.
    None,
}

impl Target {
    pub fn met(self, value: f64) -> Option<bool> {
        match self {
            Target::AtMost(t) => Some(value <= t),
            Target::AtLeast(t) => Some(value >= t),
            Target::None => None,
        }
    }

    fn json(self) -> serde_json::Value {
        match self {
            Target::AtMost(t) => serde_json::json!({"at_most": t}),
            Target::AtLeast(t) => serde_json::json!({"at_least": t}),
            Target::None => serde_json::Value::Null,
        }
    }
}

/// "meets target" / "MISSES target" as the figures' lines say it.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "meets target" } else { "MISSES target" }
}

/// Records figure `name` (e.g. `c.search_p99_ms`) with its unit and target; returns whether it
/// meets the target (true without one).
pub fn record(name: &str, value: f64, unit: &str, target: Target) -> bool {
    let dir =
        std::path::PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into())).join("bench");
    let line = serde_json::json!({"name": name, "value": value, "unit": unit, "target": target.json()});
    let written = std::fs::create_dir_all(&dir).and_then(|_| {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("figures.jsonl"))?;
        writeln!(f, "{line}")
    });
    if let Err(e) = written {
        println!("    (could not record {name}: {e})");
    }
    target.met(value).unwrap_or(true)
}

/// The `p`-quantile of sorted samples (nearest rank).
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Samples in ascending order.
pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// The median of three or more repeats of a figure (each run is printed by its caller).
pub fn median(runs: &[f64]) -> f64 {
    pct(&sorted(runs.to_vec()), 0.5)
}

//! Runs ACRO 1.0.2 (`acro_reference.py`, in the venv `scripts/acro-venv.sh` makes) on tables
//! and reads back its per-cell decisions. Shared by the differential test and the bench example.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use platform_output_checks::{NkRule, Param, Params, Statistic, Table};
use serde::{Deserialize, Serialize};

/// A table as unit rows, with the parameters both implementations check it with.
#[derive(Debug, Clone, Serialize)]
pub struct RefTable {
    pub id: String,
    /// "count", "sum" or "mean".
    pub statistic: &'static str,
    pub params: RefParams,
    /// (row key, column key, value): one per unit.
    pub rows: Vec<(String, String, i64)>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RefParams {
    pub threshold: u64,
    pub zeros_disclosive: bool,
    pub nk_n: usize,
    pub nk_k: f64,
    pub p_ratio: f64,
}

impl RefParams {
    /// ACRO's `default.yaml`, which the platform's defaults follow.
    pub const DEFAULT: Self = Self { threshold: 10, zeros_disclosive: true, nk_n: 2, nk_k: 0.9, p_ratio: 0.1 };

    pub fn params(&self) -> Params {
        let d = Params::default();
        Params {
            threshold: Param::new(self.threshold, d.threshold.rule),
            zeros_disclosive: Param::new(self.zeros_disclosive, d.zeros_disclosive.rule),
            nk: Param::new(NkRule { n: self.nk_n, k: self.nk_k }, d.nk.rule),
            p_ratio: Param::new(self.p_ratio, d.p_ratio.rule),
            ..d
        }
    }
}

impl RefTable {
    pub fn statistic(&self) -> Statistic {
        match self.statistic {
            "count" => Statistic::Count,
            "sum" => Statistic::Sum,
            _ => Statistic::Mean,
        }
    }

    /// The same table as the platform's checks take it.
    pub fn table(&self) -> Table {
        Table::from_rows(
            self.statistic(),
            None,
            vec!["row".to_owned(), "col".to_owned()],
            self.rows.iter().map(|(r, c, v)| ([r.as_str(), c.as_str()], *v as f64)),
        )
    }
}

/// ACRO's decisions on one cell: true when ACRO lists the cell under the check, `None` when the
/// check does not apply to the table's statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AcroCell {
    pub threshold: Option<bool>,
    pub zeros: Option<bool>,
    pub nk: Option<bool>,
    pub pratio: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct AcroOutput {
    pub acro_version: String,
    /// Time spent inside ACRO's `crosstab` calls.
    pub seconds: f64,
    /// Table id → "row|col" → decisions.
    pub tables: HashMap<String, HashMap<String, AcroCell>>,
}

/// The venv's python: `ACRO_PYTHON` (scripts/test.sh sets it), else
/// `$CARGO_TARGET_DIR/acro-venv/bin/python` (the workspace's `target/` by default).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("ACRO_PYTHON") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("acro-venv/bin/python")
}

/// Writes `tables` to `dir`, runs ACRO on them and reads its decisions. Panics, naming the
/// script to run, when the venv is missing.
pub fn run(tables: &[RefTable], dir: &Path) -> AcroOutput {
    let python = python();
    assert!(
        python.exists(),
        "ACRO's venv is missing ({}): run `bash scripts/acro-venv.sh` (make test does) or set ACRO_PYTHON",
        python.display()
    );
    let input = dir.join("tables.json");
    let output = dir.join("acro.json");
    let body = serde_json::to_vec(&serde_json::json!({ "tables": tables })).expect("tables serialize");
    std::fs::write(&input, body).expect("write tables.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acro_reference.py");
    let status = Command::new(&python).arg(&script).arg(&input).arg(&output).status().expect("start python");
    assert!(status.success(), "{} {} failed: {status}", python.display(), script.display());
    let out: AcroOutput = serde_json::from_slice(&std::fs::read(&output).expect("read acro.json")).expect("acro.json");
    assert_eq!(out.acro_version, "1.0.2", "the differential test is written against ACRO 1.0.2");
    out
}

/// A fresh directory under the system temp dir for one run's files.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("output-checks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

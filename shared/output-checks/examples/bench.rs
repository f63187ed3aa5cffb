//! The output checks' benchmark (issue 12): a 10,000-cell magnitude table built from 1,000,000
//! rows, checked here and by ACRO 1.0.2 in the same run (decisions compared cell by cell, the
//! ratio of the times printed; target: at least 20× faster with identical decisions), and a
//! 100,000-row dataset product (k-anonymity over 4 quasi-identifiers, l-diversity, the leakage
//! scan), which ACRO has no check for.
//!
//! `cargo run --release -p platform-output-checks --example bench` (needs ACRO's venv:
//! `bash scripts/acro-venv.sh`). Each figure is printed and appended, one JSON object a line as
//! `make bench`'s binaries do, to `$CARGO_TARGET_DIR/bench/figures.jsonl`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/acro/mod.rs"]
mod acro;

use std::io::Write as _;
use std::time::Instant;

use acro::{RefParams, RefTable};
use platform_output_checks::{
    Check, Dataset, FieldClass, FieldSpec, LeakageIndex, Outcome, Params, RawTable, check_dataset, check_table,
    scan_dataset,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROWS: usize = 1_000_000;
const SIDE: usize = 100;
const DATASET_ROWS: usize = 100_000;
const REPEATS: usize = 5;

fn record(name: &str, value: f64, unit: &str, at_least: Option<f64>) {
    let dir =
        std::path::PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into())).join("bench");
    let target = at_least.map_or(serde_json::Value::Null, |t| serde_json::json!({ "at_least": t }));
    let line = serde_json::json!({ "name": name, "value": value, "unit": unit, "target": target });
    let written = std::fs::create_dir_all(&dir).and_then(|_| {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("figures.jsonl"))?;
        writeln!(f, "{line}")
    });
    if let Err(e) = written {
        println!("    (could not record {name}: {e})");
    }
}

/// 1,000,000 unit rows over a 100 × 100 grid: most cells about 100 units, one in ten small
/// (1 to 15 units), one in twenty dominated by one large contribution.
fn magnitude_rows(rng: &mut StdRng) -> Vec<(String, String, i64)> {
    let small: Vec<usize> =
        (0..SIDE * SIDE).map(|_| if rng.random_bool(0.1) { rng.random_range(1..=15) } else { 0 }).collect();
    let small_total: usize = small.iter().sum();
    let large_cells = small.iter().filter(|&&n| n == 0).count();
    let (base, extra) = ((ROWS - small_total) / large_cells, (ROWS - small_total) % large_cells);
    let mut rows = Vec::with_capacity(ROWS);
    let mut large_seen = 0;
    for (i, &n) in small.iter().enumerate() {
        let units = if n > 0 {
            n
        } else {
            large_seen += 1;
            base + usize::from(large_seen <= extra)
        };
        let dominated = rng.random_bool(0.05);
        for u in 0..units {
            let value = if dominated && u == 0 { 1_000_000 } else { rng.random_range(0..=1_000) };
            rows.push((format!("r{:02}", i / SIDE), format!("c{:02}", i % SIDE), value));
        }
    }
    rows
}

fn magnitude(rng: &mut StdRng) {
    let table =
        RefTable { id: "bench".into(), statistic: "sum", params: RefParams::DEFAULT, rows: magnitude_rows(rng) };
    let params = table.params.params();
    let rows: Vec<([&str; 2], f64)> =
        table.rows.iter().map(|(r, c, v)| ([r.as_str(), c.as_str()], *v as f64)).collect();

    let mut runs = Vec::new();
    let mut report = None;
    for _ in 0..REPEATS {
        let start = Instant::now();
        let built = platform_output_checks::Table::from_rows(
            platform_output_checks::Statistic::Sum,
            None,
            vec!["row".into(), "col".into()],
            rows.iter().copied(),
        );
        let checked = check_table(&built, &params, &[]);
        runs.push(start.elapsed().as_secs_f64());
        report = Some(checked);
    }
    runs.sort_by(f64::total_cmp);
    let ours = runs[REPEATS / 2];
    let report = report.expect("at least one run");

    let dir = acro::scratch_dir("bench");
    let reference = acro::run(std::slice::from_ref(&table), &dir);
    let theirs = &reference.tables["bench"];
    let mut differ = 0;
    let mut flagged = 0;
    for cell in &report.cells {
        let acro = theirs[&cell.item.join("|")];
        for (check, decision) in
            [(Check::Threshold, acro.threshold), (Check::NkDominance, acro.nk), (Check::PRatio, acro.pratio)]
        {
            let mine = cell.finding(check).map(|f| f.outcome != Outcome::Pass);
            differ += usize::from(mine != decision);
            flagged += usize::from(decision == Some(true));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(report.cells.len(), theirs.len(), "the grids differ");

    let ratio = reference.seconds / ours;
    println!(
        "output checks, magnitude table ({} cells from {ROWS} rows, threshold + nk + p-ratio): platform {:.1} ms (median of {REPEATS}: {}), \
         ACRO {} {:.0} ms, {ratio:.0}× faster (target ≥ 20×: {}); decisions {} ({} cells × 3 checks, {flagged} flagged)",
        report.cells.len(),
        ours * 1e3,
        runs.iter().map(|r| format!("{:.1}", r * 1e3)).collect::<Vec<_>>().join(", "),
        reference.acro_version,
        reference.seconds * 1e3,
        if ratio >= 20.0 && differ == 0 { "meets target" } else { "MISSES target" },
        if differ == 0 { "identical".to_owned() } else { format!("DIFFER in {differ}") },
        report.cells.len(),
    );
    record("output_checks.magnitude_platform_ms", ours * 1e3, "ms", None);
    record("output_checks.magnitude_acro_ms", reference.seconds * 1e3, "ms", None);
    record("output_checks.magnitude_speedup", if differ == 0 { ratio } else { 0.0 }, "x", Some(20.0));
}

/// 100,000 raw people and a dataset product copied from 6 of their fields: 4 quasi-identifiers
/// (district, birth year, sex, occupation), a sensitive diagnosis and a visit count.
fn dataset(rng: &mut StdRng) {
    const DISTRICTS: [&str; 13] = [
        "新城区",
        "碑林区",
        "莲湖区",
        "灞桥区",
        "未央区",
        "雁塔区",
        "阎良区",
        "临潼区",
        "长安区",
        "高陵区",
        "鄠邑区",
        "蓝田县",
        "周至县",
    ];
    const OCCUPATIONS: [&str; 8] = ["教师", "医生", "工人", "农民", "职员", "学生", "退休", "个体"];
    const DIAGNOSES: [&str; 6] = ["influenza", "hypertension", "diabetes", "asthma", "fracture", "gastritis"];
    let raw_fields = ["name", "id_number", "district", "birth_year", "sex", "occupation", "diagnosis", "visits"];
    let rows: Vec<Vec<String>> = (0..DATASET_ROWS)
        .map(|i| {
            let year = rng.random_range(1940..2010);
            vec![
                format!("居民{i:06}"),
                format!("6101{:02}{year}{:04}{:04}", rng.random_range(2..26), rng.random_range(101..1231), i % 10_000),
                DISTRICTS[rng.random_range(0..DISTRICTS.len())].to_owned(),
                year.to_string(),
                ["男", "女"][rng.random_range(0..2)].to_owned(),
                OCCUPATIONS[rng.random_range(0..OCCUPATIONS.len())].to_owned(),
                DIAGNOSES[rng.random_range(0..DIAGNOSES.len())].to_owned(),
                rng.random_range(1..30).to_string(),
            ]
        })
        .collect();
    let raw = RawTable {
        fields: raw_fields.iter().map(|f| (*f).to_owned()).collect(),
        sensitive: vec![true, true, false, false, false, false, true, false],
        rows: rows.clone(),
    };
    let product = Dataset {
        fields: vec![
            FieldSpec::new("district", FieldClass::QuasiIdentifier).personal(),
            FieldSpec::new("birth_year", FieldClass::QuasiIdentifier).personal(),
            FieldSpec::new("sex", FieldClass::QuasiIdentifier).personal(),
            FieldSpec::new("occupation", FieldClass::QuasiIdentifier).personal(),
            FieldSpec::new("diagnosis", FieldClass::Sensitive).personal(),
            FieldSpec::new("visits", FieldClass::Other),
        ],
        rows: rows.iter().map(|r| r[2..].to_vec()).collect(),
    };
    let params = Params::default();

    let mut runs = Vec::new();
    let mut last = None;
    for _ in 0..REPEATS {
        let start = Instant::now();
        let index = LeakageIndex::new(b"bench-grant-key", &raw, &params).expect("HMAC takes any key");
        let report = check_dataset(&product, &params).with_leakage(scan_dataset(&index, &raw, &product));
        runs.push(start.elapsed().as_secs_f64());
        last = Some((report, index.len()));
    }
    runs.sort_by(f64::total_cmp);
    let (report, indexed) = last.expect("at least one run");
    let failing =
        |check| report.rows.iter().filter(|r| r.finding(check).is_some_and(|f| f.outcome == Outcome::Fail)).count();
    println!(
        "output checks, dataset product ({DATASET_ROWS} rows; k-anonymity over {} quasi-identifiers, l-diversity, leakage scan \
         against {indexed} indexed raw values and every raw row): platform {:.1} ms (median of {REPEATS}); rows failing k-anonymity {}, \
         l-diversity {}, raw row {}; ACRO has no dataset check",
        report.quasi_identifiers.len(),
        runs[REPEATS / 2] * 1e3,
        failing(Check::KAnonymity),
        failing(Check::LDiversity),
        failing(Check::RawRow),
    );
    record("output_checks.dataset_platform_ms", runs[REPEATS / 2] * 1e3, "ms", None);
}

fn main() {
    let mut rng = StdRng::seed_from_u64(12);
    magnitude(&mut rng);
    dataset(&mut rng);
}

//! Microdata (dataset products): no direct identifier, k-anonymity over the quasi-identifiers,
//! l-diversity of each sensitive attribute (rules SX-27, ZJK-25, NS-21: no personal information
//! at risk; k and l from the profile).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::outcome::{Check, Finding, ItemResult, Outcome};
use crate::params::{Params, rules};

/// How the catalog and the product's lineage classify a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    /// Names a person or an enterprise on its own (name, ID number, phone, credit code).
    DirectIdentifier,
    /// Identifies in combination (birth date, district, sex, occupation).
    QuasiIdentifier,
    /// The attribute to protect (diagnosis, income, debt).
    Sensitive,
    Other,
}

/// One field of a dataset product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    pub class: FieldClass,
    /// The catalog marks the field (or the raw field it comes from) as personal information.
    #[serde(default)]
    pub personal_information: bool,
    /// The raw field this one is a copy of, by name; `None` when it is derived (a band, a sum).
    /// The raw-row check compares rows only when every field is a copy.
    #[serde(default)]
    pub source: Option<String>,
}

impl FieldSpec {
    pub fn new(name: &str, class: FieldClass) -> Self {
        Self { name: name.to_owned(), class, personal_information: false, source: Some(name.to_owned()) }
    }

    pub fn personal(mut self) -> Self {
        self.personal_information = true;
        self
    }

    pub fn derived(mut self) -> Self {
        self.source = None;
        self
    }
}

/// A dataset product: its fields and its rows, each row one value per field in field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    pub fields: Vec<FieldSpec>,
    pub rows: Vec<Vec<String>>,
}

impl Dataset {
    /// The value of field `f` in `row` (empty when the row is short).
    pub fn value(&self, row: usize, f: usize) -> &str {
        self.rows.get(row).and_then(|r| r.get(f)).map_or("", String::as_str)
    }
}

/// The verdict on a dataset product: per field (direct identifiers), per row (in input order),
/// the quasi-identifiers used, and overall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetReport {
    pub outcome: Outcome,
    pub quasi_identifiers: Vec<String>,
    pub fields: Vec<ItemResult<String>>,
    pub rows: Vec<ItemResult<usize>>,
}

impl DatasetReport {
    /// Adds the leakage scan's findings ([`crate::leakage::scan_dataset`]) to the rows they are about.
    pub fn with_leakage(mut self, scanned: Vec<ItemResult<usize>>) -> Self {
        for scan in scanned {
            if let Some(row) = self.rows.get_mut(scan.item) {
                for finding in scan.findings {
                    row.push(finding);
                }
                self.outcome = self.outcome.max(row.outcome);
            }
        }
        self
    }
}

/// The quasi-identifiers of `dataset`, as field indexes: the profile's list where it sets one
/// (names the dataset lacks are ignored: an absent field identifies nobody), else every field
/// declared a quasi-identifier or marked personal information that is neither a direct
/// identifier nor a sensitive attribute.
pub fn quasi_identifiers(dataset: &Dataset, params: &Params) -> Vec<usize> {
    match &params.quasi_identifiers.value {
        Some(names) => (0..dataset.fields.len()).filter(|&f| names.contains(&dataset.fields[f].name)).collect(),
        None => (0..dataset.fields.len())
            .filter(|&f| {
                let field = &dataset.fields[f];
                field.class == FieldClass::QuasiIdentifier
                    || (field.personal_information && field.class == FieldClass::Other)
            })
            .collect(),
    }
}

/// Direct identifiers, k-anonymity and l-diversity of a dataset product.
pub fn check_dataset(dataset: &Dataset, params: &Params) -> DatasetReport {
    let fields: Vec<ItemResult<String>> = dataset
        .fields
        .iter()
        .map(|field| {
            let direct = field.class == FieldClass::DirectIdentifier;
            let finding = Finding::unless(Check::DirectIdentifier, direct, Outcome::Fail, rules::PRODUCT_REVIEW);
            ItemResult::new(field.name.clone(), vec![finding])
        })
        .collect();

    let qis = quasi_identifiers(dataset, params);
    let (class_of, class_sizes) = equivalence_classes(dataset, &qis);
    let k = params.k_anonymity.value;
    let mut rows: Vec<ItemResult<usize>> = (0..dataset.rows.len())
        .map(|r| {
            let size = class_sizes[class_of[r]];
            let finding = Finding::unless(Check::KAnonymity, size < k, Outcome::Fail, &params.k_anonymity.rule)
                .number("class_size", size as f64)
                .number("k", k as f64);
            ItemResult::new(r, vec![finding])
        })
        .collect();

    let l = params.l_diversity.value;
    for (f, field) in dataset.fields.iter().enumerate() {
        if field.class != FieldClass::Sensitive {
            continue;
        }
        let distinct = distinct_per_class(dataset, f, &class_of, class_sizes.len());
        for (r, row) in rows.iter_mut().enumerate() {
            let d = distinct[class_of[r]];
            row.push(
                Finding::unless(Check::LDiversity, d < l, Outcome::Fail, &params.l_diversity.rule)
                    .number("distinct_values", d as f64)
                    .number("l", l as f64)
                    .note(field.name.clone()),
            );
        }
    }

    let outcome = fields.iter().map(|f| f.outcome).chain(rows.iter().map(|r| r.outcome)).max().unwrap_or(Outcome::Pass);
    let quasi_identifiers = qis.iter().map(|&f| dataset.fields[f].name.clone()).collect();
    DatasetReport { outcome, quasi_identifiers, fields, rows }
}

/// Each row's equivalence class over the quasi-identifiers (ids in order of first appearance) and
/// each class's size. Without quasi-identifiers the dataset is one class.
fn equivalence_classes(dataset: &Dataset, qis: &[usize]) -> (Vec<usize>, Vec<u64>) {
    let mut ids: HashMap<Vec<&str>, usize> = HashMap::new();
    let mut sizes: Vec<u64> = Vec::new();
    let class_of = (0..dataset.rows.len())
        .map(|r| {
            let key: Vec<&str> = qis.iter().map(|&f| dataset.value(r, f)).collect();
            let id = *ids.entry(key).or_insert_with(|| {
                sizes.push(0);
                sizes.len() - 1
            });
            sizes[id] += 1;
            id
        })
        .collect();
    (class_of, sizes)
}

/// The number of distinct values of field `f` in each class.
fn distinct_per_class(dataset: &Dataset, f: usize, class_of: &[usize], classes: usize) -> Vec<usize> {
    let mut seen: std::collections::HashSet<(usize, &str)> = std::collections::HashSet::new();
    let mut distinct = vec![0; classes];
    for (r, &class) in class_of.iter().enumerate() {
        if seen.insert((class, dataset.value(r, f))) {
            distinct[class] += 1;
        }
    }
    distinct
}

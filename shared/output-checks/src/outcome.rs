//! What a check says about one cell, row, margin or file: pass, review or fail, the rule and the
//! numbers behind it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A check's verdict. Ordered by severity, so the verdict of several findings is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    /// A person must look: the check cannot decide, or the artefact always goes to review.
    Review,
    Fail,
}

/// The checks, one name each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Fewer units behind a cell than the threshold.
    Threshold,
    /// An empty cell of a frequency table.
    Zeros,
    /// The n largest contributions dominate the cell.
    NkDominance,
    /// The contributions besides the two largest are too small against the largest.
    PRatio,
    /// Min, max, mode, median or a percentile: each is one unit's own value.
    UnsafeStatistic,
    /// A released margin or total lets a suppressed cell be derived.
    MarginDerivation,
    /// A cell differs from one released earlier under the same grant by a group under the threshold.
    Differencing,
    /// A dataset product carries a direct identifier.
    DirectIdentifier,
    /// An equivalence class over the quasi-identifiers is smaller than k.
    KAnonymity,
    /// An equivalence class has fewer than l distinct values of a sensitive attribute.
    LDiversity,
    /// A token of the artefact is a sensitive value of the granted raw data.
    RawValue,
    /// A dataset row equals a raw row on all of its fields.
    RawRow,
    /// Model and report files always go to a person.
    HumanReview,
}

/// One check's verdict on one item, with the rule and the numbers it was decided on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub check: Check,
    pub outcome: Outcome,
    pub rule: String,
    /// The numbers behind the verdict (`count`, `threshold`, `top_n_share`, …), by name.
    pub numbers: BTreeMap<Cow<'static, str>, f64>,
    /// Why, where the numbers alone do not say it (a field name, an earlier release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Finding {
    pub fn new(check: Check, outcome: Outcome, rule: &str) -> Self {
        Self { check, outcome, rule: rule.to_owned(), numbers: BTreeMap::new(), note: None }
    }

    /// Pass when `failed` is false, else `outcome`.
    pub fn unless(check: Check, failed: bool, outcome: Outcome, rule: &str) -> Self {
        Self::new(check, if failed { outcome } else { Outcome::Pass }, rule)
    }

    pub fn number(mut self, name: &'static str, value: f64) -> Self {
        self.numbers.insert(Cow::Borrowed(name), value);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// The worst outcome among findings; `Pass` when there are none.
pub fn worst<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Outcome {
    findings.into_iter().map(|f| f.outcome).max().unwrap_or(Outcome::Pass)
}

/// The findings on one item (a cell, a row, a margin, a field, a file) and their worst outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult<K> {
    pub item: K,
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
}

impl<K> ItemResult<K> {
    pub fn new(item: K, findings: Vec<Finding>) -> Self {
        Self { item, outcome: worst(&findings), findings }
    }

    /// The finding of `check`, if that check ran on this item.
    pub fn finding(&self, check: Check) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }

    pub(crate) fn push(&mut self, finding: Finding) {
        self.outcome = self.outcome.max(finding.outcome);
        self.findings.push(finding);
    }
}

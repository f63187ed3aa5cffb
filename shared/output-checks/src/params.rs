//! The checks' parameters. Each value carries the rule it enforces: the profile's rule id where a
//! jurisdiction's policy profile sets it, or `platform default (…)` naming the source where the
//! seeds are silent (ACRO 1.0.2's `default.yaml`, the SDC handbook, the literature).

use serde::{Deserialize, Serialize};

/// A parameter value and the rule behind it; every finding that uses the value reports the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param<T> {
    pub value: T,
    pub rule: String,
}

impl<T> Param<T> {
    pub fn new(value: T, rule: impl Into<String>) -> Self {
        Self { value, rule: rule.into() }
    }
}

/// The nk-dominance rule: a cell fails when its `n` largest contributions make up `k` or more of
/// its total.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NkRule {
    pub n: usize,
    pub k: f64,
}

/// Every number the output checks use. [`Params::default`] holds the national defaults; a
/// jurisdiction's policy profile overrides what it sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Minimum number of units (rows, persons, enterprises) behind a released cell: a cell with
    /// fewer fails (`count < threshold`, as ACRO's `safe_threshold`). Default 10: the national
    /// profile's `min_query_group_size` (rule WF-26; its source ACRO's output-checking threshold).
    pub threshold: Param<u64>,
    /// Whether an empty cell of a frequency table is disclosive (it tells that nobody in the group
    /// has the attribute: class disclosure). Default true: platform default (ACRO's
    /// `zeros_are_disclosive`).
    pub zeros_disclosive: Param<bool>,
    /// nk-dominance over each cell's contributions (fail when the `n` largest make up at least
    /// `k` of the total, `>=` as ACRO's `safe_nk_n`/`safe_nk_k`). Default n = 2, k = 0.90:
    /// platform default (ACRO's default; SDC handbook).
    pub nk: Param<NkRule>,
    /// p-ratio rule: a cell fails when what remains after its two largest contributions is less
    /// than `p` times the largest (`(total - x1 - x2) / x1 < p`, as ACRO's `safe_pratio_p`): the
    /// second largest contributor could then estimate the largest to within p %. Default 0.10:
    /// platform default (ACRO's default; SDC handbook).
    pub p_ratio: Param<f64>,
    /// Minimum size of every equivalence class over the quasi-identifiers of a dataset product.
    /// Default 10: platform default (the frequency threshold, WF-26, so that a released row
    /// stands for as many people as a released cell).
    pub k_anonymity: Param<u64>,
    /// Minimum number of distinct values of each sensitive attribute in every equivalence class
    /// (distinct l-diversity). Default 2: platform default (Machanavajjhala et al. 2007; with a
    /// single value the class discloses the attribute of everyone in it).
    pub l_diversity: Param<usize>,
    /// The quasi-identifiers of dataset products, by field name. `None` (the default): every
    /// field the catalog marks as personal information or the dataset declares a
    /// quasi-identifier (platform default, issue 12).
    pub quasi_identifiers: Param<Option<Vec<String>>>,
    /// Shortest raw sensitive value the leakage scan indexes, in characters. Shorter values ("男",
    /// "1") would match nearly any artefact; they are protected by the table and dataset checks
    /// instead. Default 4: platform default.
    pub leak_min_chars: Param<usize>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            threshold: Param::new(10, "WF-26"),
            zeros_disclosive: Param::new(true, "platform default (ACRO zeros_are_disclosive)"),
            nk: Param::new(NkRule { n: 2, k: 0.90 }, "platform default (ACRO safe_nk_n, safe_nk_k; SDC handbook)"),
            p_ratio: Param::new(0.10, "platform default (ACRO safe_pratio_p; SDC handbook)"),
            k_anonymity: Param::new(10, "platform default (the frequency threshold, WF-26)"),
            l_diversity: Param::new(2, "platform default (distinct l-diversity)"),
            quasi_identifiers: Param::new(None, "platform default (fields marked personal information)"),
            leak_min_chars: Param::new(4, "platform default"),
        }
    }
}

/// Rule ids of checks that take no parameter.
pub mod rules {
    /// Raw data may not leave, nor outputs from which it can be restored (WF-26, ZJK-21).
    pub const RAW_DATA: &str = "WF-26, ZJK-21";
    /// Product review: no raw or sensitive data exposed, no personal information at risk (SX-27,
    /// ZJK-25, NS-21).
    pub const PRODUCT_REVIEW: &str = "SX-27, ZJK-25, NS-21";
    /// Dominance is not defined over negative contributions: a person decides (platform default,
    /// as ACRO).
    pub const NEGATIVE: &str = "platform default (ACRO: dominance not defined with negative values)";
}
